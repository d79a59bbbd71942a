// The asyncio core of a task group: spawning children (wrapped so the scope
// tree sees them) and the bookkeeping of their completion. The orchestration
// of __aexit__ (waiting, exception groups) is Python, in anyio._taskgroup.


#include "cancel/core.hpp"

namespace anyio {

PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id);

namespace {

struct TaskGroupCore {
  PyObject_HEAD
  CancelScope* scope;   // the group's cancel scope (strong)
  PyObject* tasks;      // set of running child tasks
  PyObject* exceptions; // list of child exceptions, in completion order
  PyObject* waiter;     // the host's future while it waits in __aexit__, or None
  PyObject* starting;   // dict: task -> future of a start() still waiting for started()
  PyObject* done_cb;    // bound _on_done
  size_t host_id;       // id() of the task that entered the group
  unsigned char active;
};

PyTypeObject* TaskGroupCoreType = nullptr;

PyObject* callable_name(PyObject* func) {
  PyObject* qual = PyObject_GetAttrString(func, "__qualname__");
  if (!qual) {
    PyErr_Clear();
    return PyObject_Repr(func);
  }
  PyObject* mod = PyObject_GetAttrString(func, "__module__");
  if (!mod) PyErr_Clear();
  PyObject* r = (mod && PyUnicode_Check(mod)) ? PyUnicode_FromFormat("%U.%U", mod, qual) : PyObject_Str(qual);
  Py_XDECREF(mod);
  Py_DECREF(qual);
  return r;
}

PyObject* check_coroutine(PyObject* func, PyObject* coro) {
  if (PyCoro_CheckExact(coro)) return coro;
  PyObject* fn = PyObject_GetAttrString(G.glue, "check_coroutine");
  if (!fn) {
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* r = PyObject_CallFunctionObjArgs(fn, func, coro, nullptr);
  Py_DECREF(fn);
  if (!r) {
    Py_DECREF(coro);
    return nullptr;
  }
  Py_DECREF(r);
  return coro;
}

PyObject* do_spawn(TaskGroupCore* self, PyObject* coro, PyObject* name, PyObject* start_future,
                   CancelScope* root = nullptr, size_t parent_id = 0) {
  PyObject* task = spawn_wrapped(coro, root ? root : self->scope, name, self->done_cb, nullptr,
                                 parent_id ? parent_id : self->host_id);
  if (!task) return nullptr;
  if (PySet_Add(self->tasks, task) < 0) {
    Py_DECREF(task);
    return nullptr;
  }
  if (start_future && start_future != Py_None &&
      PyDict_SetItem(self->starting, task, start_future) < 0) {
    Py_DECREF(task);
    return nullptr;
  }
  return task;
}

PyObject* not_active() {
  return raise(PyExc_RuntimeError, "This task group is not active; no new tasks can be started.");
}

// The Python TaskHandle class, set once by anyio._taskgroup.
PyObject* g_handle_class = nullptr;

// start_soon(func, *args, name=None) -> TaskHandle: the whole spawn in C, so a
// task group's start_soon costs about what asyncio.TaskGroup.create_task does.
PyObject* tg_start_soon(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  if (nargs < 1) return raise(PyExc_TypeError, "start_soon() missing required argument 'func'");
  PyObject* name = Py_None;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "name") != 0)
        return raise(PyExc_TypeError, "start_soon() got an unexpected keyword argument");
      name = args[nargs + i];
    }
  }
  if (!g_handle_class) return raise(PyExc_RuntimeError, "anyio._taskgroup is not initialised");
  PyObject* func = args[0];
  PyObject* coro = PyObject_Vectorcall(func, args + 1, static_cast<size_t>(nargs - 1), nullptr);
  if (!coro) return nullptr;
  coro = check_coroutine(func, coro);
  if (!coro) return nullptr;
  if (!self->active) {
    PyObject* r = call_method0(coro, G.s_close);
    Py_XDECREF(r);
    Py_DECREF(coro);
    return not_active();
  }
  PyObject* name_obj = name == Py_None ? callable_name(func) : PyObject_Str(name);
  if (!name_obj) {
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* task = do_spawn(self, coro, name_obj, nullptr);
  if (!task) {
    Py_DECREF(name_obj);
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* hargs[] = {task, coro, name_obj};
  PyObject* handle = PyObject_Vectorcall(g_handle_class, hargs, 3, nullptr);
  Py_DECREF(task);
  Py_DECREF(coro);
  Py_DECREF(name_obj);
  return handle;
}

// spawn(coro, name, start_future=None, root=None, parent_id=0) -> task. A task
// started with start() is spawned below its caller's scope (`root`) and moved
// to the group once it has started.
PyObject* tg_spawn(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  if (nargs < 2 || nargs > 5) return raise(PyExc_TypeError, "spawn(coro, name, start_future=None, root=None, parent_id=0)");
  if (!self->active) return not_active();
  CancelScope* root = nullptr;
  if (nargs >= 4 && args[3] != Py_None) {
    if (!PyObject_TypeCheck(args[3], CancelScopeType)) return raise(PyExc_TypeError, "root must be a CancelScope");
    root = reinterpret_cast<CancelScope*>(args[3]);
  }
  size_t parent_id = 0;
  if (nargs == 5) {
    parent_id = PyLong_AsSize_t(args[4]);
    if (parent_id == static_cast<size_t>(-1) && PyErr_Occurred()) return nullptr;
  }
  return do_spawn(self, args[0], args[1], nargs >= 3 ? args[2] : nullptr, root, parent_id);
}

int wake_waiter(TaskGroupCore* self) {
  if (self->waiter == Py_None || PySet_GET_SIZE(self->tasks) != 0) return 0;
  PyObject* done = call_method0(self->waiter, G.s_done);
  if (!done) return -1;
  bool is_done = done == Py_True;
  Py_DECREF(done);
  if (is_done) return 0;
  PyObject* r = call_method1(self->waiter, G.s_set_result, Py_None);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

PyObject* tg_on_done(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  if (PySet_Discard(self->tasks, task) < 0) return nullptr;
  PyObject* cancelled = call_method0(task, G.s_cancelled);
  if (!cancelled) return nullptr;
  bool was_cancelled = cancelled == Py_True;
  Py_DECREF(cancelled);
  PyObject* exc = nullptr;
  if (!was_cancelled) {
    exc = call_method0(task, G.s_exception);
    if (!exc) return nullptr;
  }
  // A start() still waiting: the outcome goes to its caller, not the group.
  PyObject* fut = PyDict_GetItemWithError(self->starting, task);
  if (fut) {
    Py_INCREF(fut);
    if (PyDict_DelItem(self->starting, task) < 0) {
      Py_DECREF(fut);
      Py_XDECREF(exc);
      return nullptr;
    }
    PyObject* fn = PyObject_GetAttrString(G.glue, "finish_start_future");
    PyObject* r = fn ? PyObject_CallFunctionObjArgs(fn, fut, task, exc ? exc : Py_None, nullptr) : nullptr;
    Py_XDECREF(fn);
    Py_DECREF(fut);
    Py_XDECREF(exc);
    if (!r) return nullptr;
    bool handled = r == Py_True;
    Py_DECREF(r);
    if (handled) {
      if (wake_waiter(self) < 0) return nullptr;
      Py_RETURN_NONE;
    }
    exc = nullptr;
    if (!was_cancelled) {
      exc = call_method0(task, G.s_exception);
      if (!exc) return nullptr;
    }
  } else if (PyErr_Occurred()) {
    Py_XDECREF(exc);
    return nullptr;
  }
  if (exc && exc != Py_None) {
    if (!PyObject_TypeCheck(exc, reinterpret_cast<PyTypeObject*>(G.CancelledError))) {
      if (PyList_Append(self->exceptions, exc) < 0) {
        Py_DECREF(exc);
        return nullptr;
      }
      if (scope_do_cancel(self->scope, nullptr, false) < 0) {
        Py_DECREF(exc);
        return nullptr;
      }
    }
  }
  Py_XDECREF(exc);
  if (wake_waiter(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* tg_new(PyTypeObject* type, PyObject* args, PyObject* /*kwargs*/) {
  PyObject* scope;
  if (!PyArg_ParseTuple(args, "O!:TaskGroupCore", CancelScopeType, &scope)) return nullptr;
  auto* self = reinterpret_cast<TaskGroupCore*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  Py_INCREF(scope);
  self->scope = reinterpret_cast<CancelScope*>(scope);
  self->tasks = PySet_New(nullptr);
  self->exceptions = PyList_New(0);
  self->starting = PyDict_New();
  Py_INCREF(Py_None);
  self->waiter = Py_None;
  static PyMethodDef on_done_def = {"_on_done", tg_on_done, METH_O, nullptr};
  self->done_cb = PyCFunction_New(&on_done_def, reinterpret_cast<PyObject*>(self));
  self->active = 1;
  self->host_id = 0;
  if (TaskState* host = current_task_state(true)) {
    self->host_id = reinterpret_cast<size_t>(host->task);
  } else {
    PyErr_Clear();
  }
  if (!self->tasks || !self->exceptions || !self->starting || !self->done_cb) {
    Py_DECREF(self);
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(self);
}

int tg_traverse(TaskGroupCore* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(reinterpret_cast<PyObject*>(self->scope));
  Py_VISIT(self->tasks);
  Py_VISIT(self->exceptions);
  Py_VISIT(self->waiter);
  Py_VISIT(self->starting);
  Py_VISIT(self->done_cb);
  return 0;
}

int tg_clear(TaskGroupCore* self) {
  Py_CLEAR(self->scope);
  Py_CLEAR(self->tasks);
  Py_CLEAR(self->exceptions);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->starting);
  Py_CLEAR(self->done_cb);
  return 0;
}

void tg_dealloc(TaskGroupCore* self) {
  PyObject_GC_UnTrack(self);
  tg_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* tg_get_pending(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  return PyLong_FromSsize_t(PySet_GET_SIZE(self->tasks));
}

PyObject* tg_get_host_id(PyObject* self_obj, void*) {
  return PyLong_FromSize_t(reinterpret_cast<TaskGroupCore*>(self_obj)->host_id);
}

PyObject* tg_get_scope(PyObject* self_obj, void*) {
  PyObject* s = reinterpret_cast<PyObject*>(reinterpret_cast<TaskGroupCore*>(self_obj)->scope);
  Py_INCREF(s);
  return s;
}

PyObject* tg_get_active(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<TaskGroupCore*>(self_obj)->active);
}

int tg_set_active(PyObject* self_obj, PyObject* value, void*) {
  int v = value ? PyObject_IsTrue(value) : 0;
  if (v < 0) return -1;
  reinterpret_cast<TaskGroupCore*>(self_obj)->active = static_cast<unsigned char>(v);
  return 0;
}

PyObject* tg_get_waiter(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  Py_INCREF(self->waiter);
  return self->waiter;
}

int tg_set_waiter(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<TaskGroupCore*>(self_obj);
  if (!value) value = Py_None;
  Py_INCREF(value);
  Py_SETREF(self->waiter, value);
  return 0;
}

PyMethodDef tg_methods[] = {
    {"start_soon", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_start_soon)),
     METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"spawn", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_spawn)), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef tg_members[] = {
    {"tasks", T_OBJECT, offsetof(TaskGroupCore, tasks), READONLY, nullptr},
    {"exceptions", T_OBJECT, offsetof(TaskGroupCore, exceptions), READONLY, nullptr},
    {"starting", T_OBJECT, offsetof(TaskGroupCore, starting), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef tg_getset[] = {
    {"pending", tg_get_pending, nullptr, nullptr, nullptr},
    {"host_id", tg_get_host_id, nullptr, nullptr, nullptr},
    {"scope", tg_get_scope, nullptr, nullptr, nullptr},
    {"active", tg_get_active, tg_set_active, nullptr, nullptr},
    {"waiter", tg_get_waiter, tg_set_waiter, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot tg_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(tg_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(tg_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(tg_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(tg_clear)},
    {Py_tp_methods, tg_methods},
    {Py_tp_members, tg_members},
    {Py_tp_getset, tg_getset},
    {0, nullptr},
};

PyType_Spec tg_spec = {
    "anyio._cpp.TaskGroupCore", sizeof(TaskGroupCore), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE, tg_slots,
};

}  // namespace

PyObject* fn_set_task_handle_class(PyObject*, PyObject* cls) {
  Py_INCREF(cls);
  Py_XSETREF(g_handle_class, cls);
  Py_RETURN_NONE;
}

PyMethodDef tg_module_fns[] = {
    {"set_task_handle_class", fn_set_task_handle_class, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

int register_task_group(PyObject* module) {
  TaskGroupCoreType = add_type(module, &tg_spec);
  if (!TaskGroupCoreType) return -1;
  return PyModule_AddFunctions(module, tg_module_fns);
}

}  // namespace anyio
