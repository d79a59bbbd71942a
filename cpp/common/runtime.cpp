#include "common/runtime.hpp"

#include <cstring>
#include <iterator>
#include <string>

#include "cancel/core.hpp"

namespace anyio {

Hooks hooks;

namespace {

// trio.lowlevel.in_trio_run once Trio has been imported by someone (borrowed).
PyObject* g_in_trio_run = nullptr;

// The message upstream's NoEventLoopError carries.
constexpr const char* kNoEventLoopMessage =
    "Not currently running on any asynchronous event loop. Available async backends: asyncio, trio";

// Looks up `module.attr` (new reference) for the caches below.
PyObject* import_attr(const char* module, const char* attr) {
  PyObject* mod = PyImport_ImportModule(module);
  if (!mod) return nullptr;
  PyObject* value = PyObject_GetAttrString(mod, attr);
  Py_DECREF(mod);
  return value;
}

// Fills `fields` from `module`'s attributes named in `names`; all or nothing.
bool load_attrs(const char* module, const char* const* names, PyObject** const* fields, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    // The names are dotted for nested attributes ("Abort.SUCCEEDED").
    const char* dot = std::strchr(names[i], '.');
    PyObject* value;
    if (dot) {
      std::string outer(names[i], dot);
      PyObject* holder = import_attr(module, outer.c_str());
      value = holder ? PyObject_GetAttrString(holder, dot + 1) : nullptr;
      Py_XDECREF(holder);
    } else {
      value = import_attr(module, names[i]);
    }
    if (!value) {
      for (size_t j = 0; j < i; ++j) Py_CLEAR(*fields[j]);
      return false;
    }
    *fields[i] = value;  // kept for the life of the interpreter
  }
  return true;
}

}  // namespace

// --- Backends -----------------------------------------------------------------

Backend current_backend() {
  if (tls_current) return Backend::Asyncio;
  if (running_loop()) return Backend::Asyncio;
  if (PyErr_Occurred()) return Backend::Error;
  if (!g_in_trio_run) {
    // No Trio run can be active before Trio is imported; do not import it.
    PyObject* name = PyUnicode_FromString("trio.lowlevel");
    if (!name) return Backend::Error;
    PyObject* mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (!mod) return PyErr_Occurred() ? Backend::Error : Backend::None;
    g_in_trio_run = PyObject_GetAttrString(mod, "in_trio_run");
    Py_DECREF(mod);
    if (!g_in_trio_run) return Backend::Error;
  }
  PyObject* r = PyObject_CallNoArgs(g_in_trio_run);
  if (!r) return Backend::Error;
  bool yes = r == Py_True;
  Py_DECREF(r);
  return yes ? Backend::Trio : Backend::None;
}

const TrioLowlevel* trio() {
  static TrioLowlevel cache;
  static bool loaded = false;
  if (loaded) return &cache;
  static const char* const lowlevel_names[] = {"in_trio_run",
                                               "current_task",
                                               "reschedule",
                                               "Abort.SUCCEEDED",
                                               "checkpoint",
                                               "checkpoint_if_cancelled",
                                               "cancel_shielded_checkpoint",
                                               "wait_task_rescheduled",
                                               "current_trio_token"};
  PyObject** const lowlevel_fields[] = {&cache.in_trio_run,
                                        &cache.current_task,
                                        &cache.reschedule,
                                        &cache.abort_succeeded,
                                        &cache.checkpoint,
                                        &cache.checkpoint_if_cancelled,
                                        &cache.cancel_shielded_checkpoint,
                                        &cache.wait_task_rescheduled,
                                        &cache.current_trio_token};
  static const char* const trio_names[] = {"current_time", "current_effective_deadline", "Cancelled"};
  PyObject** const trio_fields[] = {&cache.current_time, &cache.current_effective_deadline, &cache.Cancelled};
  static_assert(std::size(lowlevel_names) == std::size(lowlevel_fields));
  static_assert(std::size(trio_names) == std::size(trio_fields));
  if (!load_attrs("trio.lowlevel", lowlevel_names, lowlevel_fields, std::size(lowlevel_names)))
    return nullptr;
  if (!load_attrs("trio", trio_names, trio_fields, std::size(trio_names))) {
    for (PyObject** f : lowlevel_fields) Py_CLEAR(*f);
    return nullptr;
  }
  loaded = true;
  return &cache;
}

// --- anyio's exceptions -----------------------------------------------------------

const AnyioExceptions* anyio_exceptions() {
  static AnyioExceptions cache;
  static bool loaded = false;
  if (loaded) return &cache;
  static const char* const names[] = {"WouldBlock",          "EndOfStream",       "ClosedResourceError",
                                      "BrokenResourceError", "BusyResourceError", "NoEventLoopError"};
  PyObject** const fields[] = {&cache.WouldBlock,          &cache.EndOfStream,
                               &cache.ClosedResourceError, &cache.BrokenResourceError,
                               &cache.BusyResourceError,   &cache.NoEventLoopError};
  static_assert(std::size(names) == std::size(fields));
  if (!load_attrs("anyio._exceptions", names, fields, std::size(names))) return nullptr;
  loaded = true;
  return &cache;
}

PyObject* raise_no_event_loop() {
  const AnyioExceptions* exc = anyio_exceptions();
  if (exc) PyErr_SetString(exc->NoEventLoopError, kNoEventLoopMessage);
  return nullptr;
}

// --- Cancellation of the current task -------------------------------------------

TaskState* foreign_task_state_if_any() {
  // No loop, no task, or a task with no scopes: all "not cancellable by a
  // scope", reported by current_task_state() as an error to clear.
  TaskState* t = current_task_state(false);
  if (!t) PyErr_Clear();
  return t;
}

int set_scope_cancelled_error(CancelScope* origin) {
  PyObject* exc = make_cancelled_error(origin);
  if (exc) {
    PyErr_SetObject(G.CancelledError, exc);
    Py_DECREF(exc);
  }
  return -1;
}

int raise_if_cancelled_slow(TaskState* t) {
  CancelScope* origin = effective_cancel(t);
  if (!origin) return 0;
  observe_cancel(t);
  set_scope_cancelled_error(origin);
  return 1;
}

// --- Hooks ------------------------------------------------------------------------

PyObject* require_hook(PyObject* hook, const char* name) {
  if (!hook) PyErr_Format(PyExc_RuntimeError, "anyio._cpp: the hook %s has not been registered", name);
  return hook;
}

namespace {

struct HookEntry {
  const char* name;
  PyObject** field;
};

// The table register_hooks() fills by name; the sentinel keeps it non-empty
// while a section has no hooks.
#define ANYIO_HOOK_ENTRY(name) {#name, &hooks.name},
const HookEntry hook_table[] = {ANYIO_HOOKS(ANYIO_HOOK_ENTRY){nullptr, nullptr}};
#undef ANYIO_HOOK_ENTRY

PyObject* fn_register_hooks(PyObject*, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0)
    return raise(PyExc_TypeError, "register_hooks() takes keyword arguments only");
  if (!kwargs) Py_RETURN_NONE;
  // Check every name first, so a bad call registers nothing.
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(kwargs, &pos, &key, &value)) {
    const char* name = PyUnicode_AsUTF8(key);
    if (!name) return nullptr;
    bool known = false;
    for (const HookEntry& e : hook_table) known = known || (e.name && std::strcmp(e.name, name) == 0);
    if (!known) return PyErr_Format(PyExc_TypeError, "register_hooks(): unknown hook %R", key);
  }
  pos = 0;
  while (PyDict_Next(kwargs, &pos, &key, &value)) {
    const char* name = PyUnicode_AsUTF8(key);
    for (const HookEntry& e : hook_table) {
      if (e.name && std::strcmp(e.name, name) == 0) Py_XSETREF(*e.field, Py_NewRef(value));
    }
  }
  Py_RETURN_NONE;
}

PyObject* fn_raise_no_event_loop(PyObject*, PyObject*) { return raise_no_event_loop(); }

PyMethodDef runtime_fns[] = {
    {"raise_no_event_loop", fn_raise_no_event_loop, METH_NOARGS,
     "raise_no_event_loop()\n--\n\nRaise NoEventLoopError with anyio's message."},
    {"register_hooks", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_register_hooks)),
     METH_VARARGS | METH_KEYWORDS,
     "register_hooks(**hooks)\n--\n\nHand the Python callables the core calls back into (once per module, on "
     "import)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_runtime(PyObject* module) { return PyModule_AddFunctions(module, runtime_fns); }

}  // namespace anyio
