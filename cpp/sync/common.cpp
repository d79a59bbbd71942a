// Backend detection, waking waiters and small shared objects of the sync
// primitives.
#include "common/awaitable.hpp"
#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

// trio.lowlevel functions, looked up once Trio is imported.
PyObject* g_in_trio_run = nullptr;
PyObject* g_trio_current_task = nullptr;
PyObject* g_trio_reschedule = nullptr;
PyObject* g_abort_succeeded = nullptr;  // trio.lowlevel.Abort.SUCCEEDED
PyObject* g_sync_trio = nullptr;        // anyio._sync_trio
PyObject* g_would_block = nullptr;
PyObject* g_done = nullptr;

bool load_trio() {
  if (g_in_trio_run) return true;
  // Only look once Trio is already imported: asyncio users never pay for it.
  PyObject* name = PyUnicode_FromString("trio.lowlevel");
  if (!name) return false;
  PyObject* mod = PyImport_GetModule(name);
  Py_DECREF(name);
  if (!mod) {
    PyErr_Clear();
    return false;
  }
  g_in_trio_run = PyObject_GetAttrString(mod, "in_trio_run");
  g_trio_current_task = PyObject_GetAttrString(mod, "current_task");
  g_trio_reschedule = PyObject_GetAttrString(mod, "reschedule");
  PyObject* abort_enum = PyObject_GetAttrString(mod, "Abort");
  g_abort_succeeded = abort_enum ? PyObject_GetAttrString(abort_enum, "SUCCEEDED") : nullptr;
  Py_XDECREF(abort_enum);
  Py_DECREF(mod);
  if (!g_in_trio_run || !g_trio_current_task || !g_trio_reschedule || !g_abort_succeeded) {
    Py_CLEAR(g_abort_succeeded);
    Py_CLEAR(g_in_trio_run);
    Py_CLEAR(g_trio_current_task);
    Py_CLEAR(g_trio_reschedule);
    PyErr_Clear();
    return false;
  }
  return true;
}

// --- Done: an awaitable that finishes at once --------------------------------

PySendResult done_send(PyObject*, PyObject*, PyObject** out) {
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_RETURN;
}

PyObject* done_iternext(PyObject*) { return nullptr; }

PyObject* done_self(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* done_send_method(PyObject*, PyObject*) {
  PyErr_SetNone(PyExc_StopIteration);
  return nullptr;
}

PyObject* done_throw(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) == 0) set_thrown(args, nargs);
  return nullptr;
}

PyObject* done_close(PyObject*, PyObject*) { Py_RETURN_NONE; }

PyMethodDef done_methods[] = {
    {"send", done_send_method, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(done_throw)), METH_FASTCALL,
     nullptr},
    {"close", done_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot done_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(done_send)},
    {Py_am_await, reinterpret_cast<void*>(done_self)},
    {Py_tp_iter, reinterpret_cast<void*>(done_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(done_iternext)},
    {Py_tp_methods, done_methods},
    {0, nullptr},
};

PyType_Spec done_spec = {"anyio._cpp.Done", sizeof(PyObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, done_slots};

}  // namespace

Backend detect_backend() {
  if (tls_current) return BACKEND_ASYNCIO;
  PyObject* loop = running_loop();
  if (loop) return BACKEND_ASYNCIO;
  if (PyErr_Occurred()) return BACKEND_ERROR;
  if (!load_trio()) return BACKEND_NONE;
  PyObject* r = PyObject_CallNoArgs(g_in_trio_run);
  if (!r) return BACKEND_ERROR;
  bool yes = r == Py_True;
  Py_DECREF(r);
  return yes ? BACKEND_TRIO : BACKEND_NONE;
}

PyObject* no_event_loop() {
  PyObject* fn = PyObject_GetAttrString(G.glue, "raise_no_event_loop");
  if (!fn) return nullptr;
  PyObject* r = PyObject_CallNoArgs(fn);
  Py_DECREF(fn);
  Py_XDECREF(r);
  if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no event loop is running");
  return nullptr;
}

PyObject* current_task_obj(Backend* backend_out) {
  if (tls_current && tls_current->task) {
    if (backend_out) *backend_out = BACKEND_ASYNCIO;
    Py_INCREF(tls_current->task);
    return tls_current->task;
  }
  Backend b = detect_backend();
  if (backend_out) *backend_out = b;
  switch (b) {
    case BACKEND_ASYNCIO: {
      PyObject* task = PyObject_CallOneArg(G.current_task, running_loop());
      if (task == Py_None) {
        Py_DECREF(task);
        return raise(PyExc_RuntimeError, "this must be called from within a task");
      }
      return task;
    }
    case BACKEND_TRIO:
      return PyObject_CallNoArgs(g_trio_current_task);
    case BACKEND_NONE:
      return no_event_loop();
    default:
      return nullptr;
  }
}

Waiter* pop_live(WaitQueue& q) {
  while (Waiter* w = q.head) {
    q.unlink(w);
    if (w->trio) return w;
    PyObject* done = call_method0(w->waker, G.s_done);
    if (!done) return nullptr;
    bool is_done = done == Py_True;
    Py_DECREF(done);
    if (!is_done) return w;
    // Cancelled while parked: its task will see CancelledError and must not
    // be handed anything.
  }
  return nullptr;
}

int wake_parked(PyObject* waker, bool trio) {
  PyObject* r;
  if (trio) {
    // A Trio waiter exists only inside a Trio run: trio.lowlevel is imported.
    if (!g_trio_reschedule && !load_trio()) {
      PyErr_SetString(PyExc_RuntimeError, "trio.lowlevel is not available");
      return -1;
    }
    r = PyObject_CallOneArg(g_trio_reschedule, waker);
  } else {
    r = call_method1(waker, G.s_set_result, Py_None);
  }
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

int wake(Waiter* w) {
  w->granted = true;
  return wake_parked(w->waker, w->trio);
}

PyObject* trio_glue(TrioFn which) {
  static PyObject* fns[2] = {nullptr, nullptr};
  if (!fns[which]) {
    if (!g_sync_trio) {
      g_sync_trio = PyImport_ImportModule("anyio._sync_trio");
      if (!g_sync_trio) return nullptr;
    }
    // Trio is imported by now (we only get here inside a Trio run).
    if (!load_trio()) return raise(PyExc_RuntimeError, "trio.lowlevel is not available");
    fns[which] = PyObject_GetAttrString(g_sync_trio, which == TRIO_EVENT_WAIT ? "event_wait" : "acquire");
    if (!fns[which]) return nullptr;
  }
  return fns[which];  // borrowed: kept for the life of the interpreter
}

PyObject* abort_succeeded() {
  Py_INCREF(g_abort_succeeded);
  return g_abort_succeeded;
}

PyObject* would_block() {
  if (!g_would_block) {
    PyObject* mod = PyImport_ImportModule("anyio._exceptions");
    if (!mod) return nullptr;
    g_would_block = PyObject_GetAttrString(mod, "WouldBlock");
    Py_DECREF(mod);
    if (!g_would_block) return nullptr;
  }
  PyErr_SetNone(g_would_block);
  return nullptr;
}

PyObject* done_awaitable() {
  Py_INCREF(g_done);
  return g_done;
}

}  // namespace anyio::sync

namespace anyio {
namespace {

PyObject* fn_sync_current_task(PyObject*, PyObject*) { return sync::current_task_obj(); }

PyMethodDef sync_fns[] = {
    {"sync_current_task", fn_sync_current_task, METH_NOARGS,
     "The running asyncio.Task or Trio task, the identity lock owners are kept by."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_sync(PyObject* module) {
  if (PyModule_AddFunctions(module, sync_fns) < 0) return -1;
  PyTypeObject* done_type = add_type(module, &sync::done_spec);
  if (!done_type) return -1;
  sync::g_done = PyObject_New(PyObject, done_type);
  if (!sync::g_done) return -1;
  if (sync::register_op(module) < 0) return -1;
  if (sync::register_events(module) < 0) return -1;
  return sync::register_pools(module);
}

}  // namespace anyio
