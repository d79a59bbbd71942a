// TaskHandleBase, the storage of anyio's TaskHandle, and the names tasks get.
#include "cancel/task_group.hpp"

namespace anyio {

namespace {

// The task name for a callable: its ``__module__`` and ``__qualname__``, the
// ones present and non-empty, joined with a dot, as upstream names tasks on
// every backend. A functools.partial has no __qualname__ and its class's
// __module__, so it is named "functools"; an object with neither gets "". A
// non-string part raises the TypeError str.join raises, as upstream. Most
// spawns repeat the function of the spawn before, so the last (module,
// qualname) pair and the name made from them are kept; they are compared by
// identity, so a function whose attributes changed gets a fresh name.
PyObject* g_last_qual = nullptr;
PyObject* g_last_mod = nullptr;
PyObject* g_last_name = nullptr;

PyObject* lookup_name_part(PyObject* func, PyObject* attr) {
  PyObject* v = PyObject_GetAttr(func, attr);
  if (!v) {
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return nullptr;
    PyErr_Clear();
    Py_INCREF(Py_None);
    return Py_None;
  }
  return v;
}

PyObject* join_name_parts(PyObject* mod, PyObject* qual) {
  PyObject* parts = PyList_New(0);
  if (!parts) return nullptr;
  for (PyObject* part : {mod, qual}) {
    int truth = PyObject_IsTrue(part);
    if (truth < 0 || (truth && PyList_Append(parts, part) < 0)) {
      Py_DECREF(parts);
      return nullptr;
    }
  }
  PyObject* dot = PyUnicode_FromString(".");
  PyObject* r = dot ? PyUnicode_Join(dot, parts) : nullptr;
  Py_XDECREF(dot);
  Py_DECREF(parts);
  return r;
}

// The storage of anyio's TaskHandle (the Python subclass in anyio._taskgroup has
// the properties and methods). start_soon makes one per child, so it is filled
// in here without running any Python.
struct TaskHandleBase {
  PyObject_HEAD
  PyObject* task;  // the asyncio.Task, or None on Trio
  PyObject* coro;
  PyObject* name;
  PyObject* start_value;  // unset until start() got the value from started()
  PyObject* outcome;      // Trio: (value, exception, cancelled) once finished
  PyObject* trio_scope;
  PyObject* trio_done;
  PyObject* weakreflist;
  char cancel_requested;
};

PyTypeObject* TaskHandleBaseType = nullptr;
// The task_handle_class hook as last checked to be a subclass of
// TaskHandleBase (strong: no other object can take its address while cached).
PyObject* g_checked_handle_class = nullptr;

PyObject* make_handle(PyTypeObject* cls, PyObject* task, PyObject* coro, PyObject* name) {
  auto* h = reinterpret_cast<TaskHandleBase*>(cls->tp_alloc(cls, 0));
  if (!h) return nullptr;
  Py_INCREF(task);
  h->task = task;
  Py_INCREF(coro);
  h->coro = coro;
  Py_INCREF(name);
  h->name = name;
  return reinterpret_cast<PyObject*>(h);
}

PyObject* th_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"task", "coro", "name", nullptr};
  PyObject *task, *coro, *name;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:TaskHandle", const_cast<char**>(kwlist), &task, &coro,
                                   &name))
    return nullptr;
  return make_handle(type, task, coro, name);
}

int th_traverse(TaskHandleBase* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->task);
  Py_VISIT(self->coro);
  Py_VISIT(self->name);
  Py_VISIT(self->start_value);
  Py_VISIT(self->outcome);
  Py_VISIT(self->trio_scope);
  Py_VISIT(self->trio_done);
  return 0;
}

int th_clear(TaskHandleBase* self) {
  Py_CLEAR(self->task);
  Py_CLEAR(self->coro);
  Py_CLEAR(self->name);
  Py_CLEAR(self->start_value);
  Py_CLEAR(self->outcome);
  Py_CLEAR(self->trio_scope);
  Py_CLEAR(self->trio_done);
  return 0;
}

void th_dealloc(TaskHandleBase* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  th_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMemberDef th_members[] = {
    {"_task", T_OBJECT, offsetof(TaskHandleBase, task), 0, nullptr},
    {"_coro", T_OBJECT, offsetof(TaskHandleBase, coro), 0, nullptr},
    {"_name", T_OBJECT, offsetof(TaskHandleBase, name), 0, nullptr},
    {"_start_value", T_OBJECT_EX, offsetof(TaskHandleBase, start_value), 0, nullptr},
    {"_outcome", T_OBJECT, offsetof(TaskHandleBase, outcome), 0, nullptr},
    {"_trio_scope", T_OBJECT, offsetof(TaskHandleBase, trio_scope), 0, nullptr},
    {"_trio_done", T_OBJECT, offsetof(TaskHandleBase, trio_done), 0, nullptr},
    {"_cancel_requested", T_BOOL, offsetof(TaskHandleBase, cancel_requested), 0, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TaskHandleBase, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot th_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(th_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(th_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(th_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(th_clear)},
    {Py_tp_members, th_members},
    {0, nullptr},
};

PyType_Spec th_spec = {
    "anyio._cpp.TaskHandleBase",
    sizeof(TaskHandleBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    th_slots,
};

}  // namespace

PyObject* task_name_of(PyObject* func) {
  PyObject* mod = lookup_name_part(func, G.s_module);
  if (!mod) return nullptr;
  PyObject* qual = lookup_name_part(func, G.s_qualname);
  if (!qual) {
    Py_DECREF(mod);
    return nullptr;
  }
  if (qual == g_last_qual && mod == g_last_mod && g_last_name) {
    Py_DECREF(qual);
    Py_DECREF(mod);
    Py_INCREF(g_last_name);
    return g_last_name;
  }
  PyObject* r = join_name_parts(mod, qual);
  // Only str and None parts give the same name again for the same objects.
  if (r && (mod == Py_None || PyUnicode_CheckExact(mod)) && (qual == Py_None || PyUnicode_CheckExact(qual))) {
    Py_XSETREF(g_last_qual, qual);
    Py_XSETREF(g_last_mod, mod);
    Py_INCREF(r);
    Py_XSETREF(g_last_name, r);
    return r;
  }
  Py_DECREF(mod);
  Py_DECREF(qual);
  return r;
}

PyTypeObject* task_handle_class() {
  PyObject* cls = hooks.task_handle_class;
  if (cls && cls == g_checked_handle_class) return reinterpret_cast<PyTypeObject*>(cls);
  if (!ANYIO_REQUIRE_HOOK(task_handle_class)) return nullptr;
  if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), TaskHandleBaseType)) {
    PyErr_SetString(PyExc_TypeError, "the task_handle_class hook must be a subclass of TaskHandleBase");
    return nullptr;
  }
  Py_INCREF(cls);
  Py_XSETREF(g_checked_handle_class, cls);
  return reinterpret_cast<PyTypeObject*>(cls);
}

PyObject* new_task_handle(PyTypeObject* cls, PyObject* task, PyObject* coro, PyObject* name) {
  return make_handle(cls, task, coro, name);
}

namespace {

PyObject* fn_task_name(PyObject*, PyObject* func) { return task_name_of(func); }

PyMethodDef th_module_fns[] = {
    {"task_name", fn_task_name, METH_O,
     "task_name(func)\n--\n\nThe name a task running ``func`` gets when no name is given."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_task_handle(PyObject* module) {
  TaskHandleBaseType = add_type(module, &th_spec);
  if (!TaskHandleBaseType) return -1;
  return PyModule_AddFunctions(module, th_module_fns);
}

}  // namespace anyio
