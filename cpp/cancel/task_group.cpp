// The TaskGroupBase type: spawning children (wrapped so the scope tree sees
// them), the bookkeeping of their completion, and entering and leaving a group
// (task_group.hpp has the map of the task group files).
#include "cancel/task_group.hpp"

namespace anyio {

namespace {

PyTypeObject* TaskGroupBaseType = nullptr;

PyObject* tg_on_done(PyObject* self_obj, PyObject* task);

int ensure_spawn_state(TaskGroupBase* self) {
  if (!self->tasks && !(self->tasks = PySet_New(nullptr))) return -1;
  if (!self->done_cb) {
    static PyMethodDef on_done_def = {"_on_done", tg_on_done, METH_O, nullptr};
    self->done_cb = PyCFunction_New(&on_done_def, reinterpret_cast<PyObject*>(self));
    if (!self->done_cb) return -1;
  }
  return 0;
}

PyObject* ensure_exceptions(TaskGroupBase* self) {
  if (!self->exceptions) self->exceptions = PyList_New(0);
  return self->exceptions;
}

PyObject* ensure_starting(TaskGroupBase* self) {
  if (!self->starting) self->starting = PyDict_New();
  return self->starting;
}

PyObject* check_coroutine(PyObject* func, PyObject* coro) {
  if (PyCoro_CheckExact(coro)) return coro;
  Ref checked = Ref::steal(call_hook(hooks.check_coroutine, "check_coroutine", {func, coro}));
  if (!checked) {
    Py_DECREF(coro);
    return nullptr;
  }
  return coro;
}

PyObject* do_spawn(TaskGroupBase* self, PyObject* coro, PyObject* name, PyObject* start_future,
                   CancelScope* root = nullptr, size_t parent_id = 0) {
  if (ensure_spawn_state(self) < 0) return nullptr;
  bool starting = start_future && start_future != Py_None;
  if (starting && !ensure_starting(self)) return nullptr;
  PyObject* task = spawn_wrapped(coro, root ? root : self->scope, name, self->done_cb, nullptr,
                                 parent_id ? parent_id : self->host_id);
  if (!task) return nullptr;
  if (PySet_Add(self->tasks, task) < 0 ||
      (starting && PyDict_SetItem(self->starting, task, start_future) < 0)) {
    Py_DECREF(task);
    return nullptr;
  }
  return task;
}

PyObject* not_active() {
  return raise(PyExc_RuntimeError, "This task group is not active; no new tasks can be started.");
}

// start_soon(func, *args, name=None) -> TaskHandle: the whole spawn in C, so a
// task group's start_soon costs about what asyncio.TaskGroup.create_task does.
PyObject* tg_start_soon(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs < 1) return raise(PyExc_TypeError, "start_soon() missing required argument 'func'");
  PyObject* name = Py_None;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "name") != 0)
        return raise(PyExc_TypeError, "start_soon() got an unexpected keyword argument");
      name = args[nargs + i];
    }
  }
  if (self->trio) {
    PyObject* rest = PyTuple_New(nargs - 1);
    if (!rest) return nullptr;
    for (Py_ssize_t i = 1; i < nargs; ++i) {
      Py_INCREF(args[i]);
      PyTuple_SET_ITEM(rest, i - 1, args[i]);
    }
    PyObject* margs[] = {self_obj, args[0], rest, name};
    PyObject* r =
        PyObject_VectorcallMethod(G.s_trio_start_soon, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    Py_DECREF(rest);
    return r;
  }
  PyTypeObject* handle_class = task_handle_class();
  if (!handle_class) return nullptr;
  PyObject* func = args[0];
  // Named first, as upstream: a name that cannot be made leaves no coroutine.
  PyObject* name_obj = name == Py_None ? task_name_of(func) : PyObject_Str(name);
  if (!name_obj) return nullptr;
  PyObject* coro = PyObject_Vectorcall(func, args + 1, static_cast<size_t>(nargs - 1), nullptr);
  if (coro) coro = check_coroutine(func, coro);
  if (!coro) {
    Py_DECREF(name_obj);
    return nullptr;
  }
  if (!self->active) {
    PyObject* r = call_method0(coro, G.s_close);
    Py_XDECREF(r);
    Py_DECREF(coro);
    Py_DECREF(name_obj);
    return not_active();
  }
  PyObject* task = do_spawn(self, coro, name_obj, nullptr);
  if (!task) {
    Py_DECREF(name_obj);
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* handle = new_task_handle(handle_class, task, coro, name_obj);
  Py_DECREF(task);
  Py_DECREF(coro);
  Py_DECREF(name_obj);
  return handle;
}

// _spawn_raw(coro, name, start_future=None, root=None, parent_id=0) -> task. A
// task started with start() is spawned below its caller's scope (`root`) and
// moved to the group once it has started.
PyObject* tg_spawn_raw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs < 2 || nargs > 5)
    return raise(PyExc_TypeError, "_spawn_raw(coro, name, start_future=None, root=None, parent_id=0)");
  if (!self->active) return not_active();
  CancelScope* root = nullptr;
  if (nargs >= 4 && args[3] != Py_None) {
    if (!PyObject_TypeCheck(args[3], CancelScopeType))
      return raise(PyExc_TypeError, "root must be a CancelScope");
    root = reinterpret_cast<CancelScope*>(args[3]);
  }
  size_t parent_id = 0;
  if (nargs == 5) {
    parent_id = PyLong_AsSize_t(args[4]);
    if (parent_id == static_cast<size_t>(-1) && PyErr_Occurred()) return nullptr;
  }
  return do_spawn(self, args[0], args[1], nargs >= 3 ? args[2] : nullptr, root, parent_id);
}

int wake_waiter(TaskGroupBase* self) {
  if (!self->waiter || pending(self) != 0) return 0;
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

// A child spawned by start() whose caller still waits: the child's outcome
// (`exc`: its exception, None if it returned, null if it was cancelled) goes
// to that caller. Returns 1 if it did, 0 if the child is not such a one (or
// had already called task_status.started()), -1 on error.
int hand_to_starter(TaskGroupBase* self, PyObject* task, PyObject* exc) {
  PyObject* found = self->starting ? PyDict_GetItemWithError(self->starting, task) : nullptr;
  if (!found) return PyErr_Occurred() ? -1 : 0;
  Ref future = Ref::borrow(found);
  if (PyDict_DelItem(self->starting, task) < 0) return -1;
  Ref r = Ref::steal(
      call_hook(hooks.finish_start_future, "finish_start_future", {future.get(), task, exc ? exc : Py_None}));
  if (!r) return -1;
  return r.get() == Py_True ? 1 : 0;
}

// The done callback of every child: forget it, collect its error (which
// cancels the group), and wake the host if it waits for the last child.
PyObject* tg_on_done(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (self->tasks && PySet_Discard(self->tasks, task) < 0) return nullptr;
  Ref cancelled = Ref::steal(call_method0(task, G.s_cancelled));
  if (!cancelled) return nullptr;
  Ref exc;
  if (cancelled.get() != Py_True && !(exc = Ref::steal(call_method0(task, G.s_exception)))) return nullptr;
  int handed = hand_to_starter(self, task, exc.get());
  if (handed < 0) return nullptr;
  if (!handed && exc && exc.get() != Py_None &&
      !PyObject_TypeCheck(exc.get(), reinterpret_cast<PyTypeObject*>(G.CancelledError))) {
    if (!ensure_exceptions(self) || PyList_Append(self->exceptions, exc.get()) < 0) return nullptr;
    if (scope_do_cancel(self->scope, nullptr, false) < 0) return nullptr;
  }
  if (wake_waiter(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* tg_aenter(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (self->entered) return raise(PyExc_RuntimeError, "TaskGroup cannot be entered more than once");
  if (!running_loop()) {
    if (PyErr_Occurred()) return nullptr;
    self->entered = 1;
    self->trio = 1;
    return PyObject_CallMethodNoArgs(self_obj, G.s_trio_aenter);
  }
  TaskState* host = current_task_state(true);
  if (!host) return nullptr;
  PyObject* entered = scope_enter(self->scope);
  if (!entered) return nullptr;
  Py_DECREF(entered);
  self->entered = 1;
  self->active = 1;
  self->host_id = reinterpret_cast<size_t>(host->task);
  return new_task_group_enter(self_obj);
}

PyObject* tg_aexit(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs != 3) return raise(PyExc_TypeError, "__aexit__ expects 3 arguments");
  if (self->trio) {
    PyObject* margs[] = {self_obj, args[0], args[1], args[2]};
    return PyObject_VectorcallMethod(G.s_trio_exit, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  }
  if (!self->active) return raise(PyExc_RuntimeError, "This task group is not active");
  if (args[1] != Py_None || pending(self) || has_exceptions(self)) {
    PyObject* margs[] = {self_obj, args[1]};
    return PyObject_VectorcallMethod(G.s_asyncio_exit, margs, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  }
  return new_task_group_exit(self_obj);
}

// --- the type --------------------------------------------------------------------

PyObject* tg_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) || (kwargs && PyDict_GET_SIZE(kwargs)))
    return raise(PyExc_TypeError, "TaskGroup() takes no arguments");
  auto* self = reinterpret_cast<TaskGroupBase*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->scope = reinterpret_cast<CancelScope*>(new_detached_scope());
  if (!self->scope) {
    Py_DECREF(self);
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(self);
}

int tg_traverse(TaskGroupBase* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(reinterpret_cast<PyObject*>(self->scope));
  Py_VISIT(self->tasks);
  Py_VISIT(self->exceptions);
  Py_VISIT(self->waiter);
  Py_VISIT(self->starting);
  Py_VISIT(self->done_cb);
  Py_VISIT(self->nursery);
  Py_VISIT(self->nursery_cm);
  return 0;
}

int tg_clear(TaskGroupBase* self) {
  Py_CLEAR(self->nursery);
  Py_CLEAR(self->nursery_cm);
  Py_CLEAR(self->scope);
  Py_CLEAR(self->tasks);
  Py_CLEAR(self->exceptions);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->starting);
  Py_CLEAR(self->done_cb);
  return 0;
}

void tg_dealloc(TaskGroupBase* self) {
  PyObject_GC_UnTrack(self);
  tg_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* tg_get_pending(PyObject* self_obj, void*) {
  return PyLong_FromSsize_t(pending(reinterpret_cast<TaskGroupBase*>(self_obj)));
}

PyObject* tg_get_host_id(PyObject* self_obj, void*) {
  return PyLong_FromSize_t(reinterpret_cast<TaskGroupBase*>(self_obj)->host_id);
}

PyObject* tg_get_exceptions(PyObject* self_obj, void*) {
  PyObject* r = ensure_exceptions(reinterpret_cast<TaskGroupBase*>(self_obj));
  Py_XINCREF(r);
  return r;
}

PyObject* tg_get_active(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<TaskGroupBase*>(self_obj)->active);
}

int tg_set_active(PyObject* self_obj, PyObject* value, void*) {
  int v = value ? PyObject_IsTrue(value) : 0;
  if (v < 0) return -1;
  reinterpret_cast<TaskGroupBase*>(self_obj)->active = static_cast<unsigned char>(v);
  return 0;
}

PyObject* tg_get_waiter(PyObject* self_obj, void*) {
  PyObject* w = reinterpret_cast<TaskGroupBase*>(self_obj)->waiter;
  if (!w) w = Py_None;
  Py_INCREF(w);
  return w;
}

int tg_set_waiter(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (value == Py_None) value = nullptr;
  Py_XINCREF(value);
  Py_XSETREF(self->waiter, value);
  return 0;
}

PyMethodDef tg_methods[] = {
    {"start_soon", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_start_soon)),
     METH_FASTCALL | METH_KEYWORDS,
     "start_soon(func, *args, name=None)\n--\n\nStart ``func(*args)`` as a new task in this group."},
    {"__aenter__", tg_aenter, METH_NOARGS, nullptr},
    {"__aexit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_aexit)), METH_FASTCALL,
     nullptr},
    {"_spawn_raw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_spawn_raw)), METH_FASTCALL,
     nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef tg_members[] = {
    {"cancel_scope", T_OBJECT, offsetof(TaskGroupBase, scope), READONLY,
     "The cancel scope covering the host and every child task."},
    {"_nursery", T_OBJECT, offsetof(TaskGroupBase, nursery), 0, nullptr},
    {"_nursery_cm", T_OBJECT, offsetof(TaskGroupBase, nursery_cm), 0, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef tg_getset[] = {
    {"_pending", tg_get_pending, nullptr, nullptr, nullptr},
    {"_host_id", tg_get_host_id, nullptr, nullptr, nullptr},
    {"_exceptions", tg_get_exceptions, nullptr, nullptr, nullptr},
    {"_active", tg_get_active, tg_set_active, nullptr, nullptr},
    {"_waiter", tg_get_waiter, tg_set_waiter, nullptr, nullptr},
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
    "anyio._cpp.TaskGroupBase",
    sizeof(TaskGroupBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    tg_slots,
};

}  // namespace

int register_task_group(PyObject* module) {
  TaskGroupBaseType = add_type(module, &tg_spec);
  if (!TaskGroupBaseType) return -1;
  if (register_task_group_awaitables(module) < 0) return -1;
  return register_task_handle(module);
}

}  // namespace anyio
