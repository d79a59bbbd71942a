// The awaitables a task group's __aenter__ and __aexit__ return on asyncio
// when entering or leaving needs no Python code.
#include "cancel/task_group.hpp"
#include "common/awaitable.hpp"

namespace anyio {

namespace {

// What `await tg.__aenter__()` returns on asyncio, where entering never
// suspends: an awaitable that finishes at once with the group.
struct TaskGroupEnter {
  PyObject_HEAD
  PyObject* value;  // strong until handed out
};

PyTypeObject* TaskGroupEnterType = nullptr;

PySendResult enter_send(PyObject* self_obj, PyObject*, PyObject** out) {
  auto* self = reinterpret_cast<TaskGroupEnter*>(self_obj);
  if (!self->value) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __aenter__()");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  *out = self->value;
  self->value = nullptr;
  return PYGEN_RETURN;
}

PyObject* enter_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  Py_CLEAR(reinterpret_cast<TaskGroupEnter*>(self_obj)->value);
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* enter_close(PyObject* self_obj, PyObject*) {
  Py_CLEAR(reinterpret_cast<TaskGroupEnter*>(self_obj)->value);
  Py_RETURN_NONE;
}

void enter_dealloc(TaskGroupEnter* self) {
  Py_CLEAR(self->value);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef enter_methods[] = {
    {"send", send_method_via_send<enter_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(enter_throw)), METH_FASTCALL,
     nullptr},
    {"close", enter_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// Not GC-tracked, so not an add_awaitable_type type (those all are): it only
// refers to the group, which never refers back to it, and every `async with`
// of a task group makes one.
PyType_Slot enter_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(enter_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<enter_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(enter_dealloc)},
    {Py_tp_methods, enter_methods},
    {0, nullptr},
};

PyType_Spec enter_spec = {"anyio._cpp.TaskGroupEnter", sizeof(TaskGroupEnter), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, enter_slots};

// What `await tg.__aexit__(None, None, None)` returns on asyncio when no child
// is left: leaving is still a scheduling point, so it yields once, shielded
// from cancellation, and exits the group's scope. If children were spawned
// during that yield, or the host was cancelled natively while yielding, the
// rest of the work moves to the Python `_asyncio_exit`, which this forwards to.
struct TaskGroupExit {
  PyObject_HEAD
  PyObject* group;     // strong
  PyObject* shielded;  // owner of the TaskState whose shielded_yield we set
  PyObject* inner;     // the `_asyncio_exit` coroutine once the work moved there
  YieldState state;
};

PyTypeObject* TaskGroupExitType = nullptr;

void exit_release_shield(TaskGroupExit* self) { unshield_yield(&self->shielded); }

// Hands the rest of the exit to `group._asyncio_exit(None, thrown, True)`.
// Its own part is over: once the continuation finishes, the awaitable is done.
PySendResult exit_delegate(TaskGroupExit* self, PyObject* thrown, PyObject** out) {
  self->state = YieldState::Done;
  PyObject* margs[] = {self->group, Py_None, thrown ? thrown : Py_None, Py_True};
  self->inner =
      PyObject_VectorcallMethod(G.s_asyncio_exit, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  if (!self->inner) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  return inner_send(&self->inner, Py_None, out);
}

PySendResult exit_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<TaskGroupExit*>(self_obj);
  if (self->inner) return inner_send(&self->inner, arg, out);
  if (self->state == YieldState::Fresh) {
    TaskState* t = current_task_state(true);
    if (!t) {
      *out = nullptr;
      return PYGEN_ERROR;
    }
    shield_yield(t, &self->shielded);
    self->state = YieldState::Yielded;
    Py_INCREF(Py_None);
    *out = Py_None;
    return PYGEN_NEXT;
  }
  if (self->state == YieldState::Done) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __aexit__()");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  exit_release_shield(self);
  auto* group = reinterpret_cast<TaskGroupBase*>(self->group);
  if (pending(group) || has_exceptions(group)) return exit_delegate(self, nullptr, out);
  self->state = YieldState::Done;
  group->active = 0;
  *out = scope_exit(group->scope, Py_None, Py_None, Py_None);
  return *out ? PYGEN_RETURN : PYGEN_ERROR;
}

PyObject* exit_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<TaskGroupExit*>(self_obj);
  PyObject* out = nullptr;
  if (self->inner) return send_result_to_python(inner_throw(&self->inner, args, nargs, &out), out);
  exit_release_shield(self);
  set_thrown(args, nargs);
  if (self->state != YieldState::Yielded) {
    self->state = YieldState::Done;
    return nullptr;
  }
  // A native cancellation (task.cancel()) of the host during the yield.
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  PySendResult r = exit_delegate(self, value, &out);
  Py_XDECREF(value);
  return send_result_to_python(r, out);
}

PyObject* exit_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<TaskGroupExit*>(self_obj);
  exit_release_shield(self);
  self->state = YieldState::Done;
  if (self->inner) return inner_close(&self->inner);
  Py_RETURN_NONE;
}

int exit_traverse(TaskGroupExit* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->group);
  Py_VISIT(self->shielded);
  Py_VISIT(self->inner);
  return 0;
}

int exit_clear(TaskGroupExit* self) {
  exit_release_shield(self);
  Py_CLEAR(self->group);
  Py_CLEAR(self->inner);
  return 0;
}

const AwaitableSpec exit_spec = {
    .name = "anyio._cpp.TaskGroupExit",
    .basicsize = sizeof(TaskGroupExit),
    .send = exit_send,
    .throw_ = exit_throw,
    .close = exit_close,
    .traverse = reinterpret_cast<traverseproc>(exit_traverse),
    .clear = reinterpret_cast<inquiry>(exit_clear),
};

}  // namespace

PyObject* new_task_group_enter(PyObject* group) {
  auto* enter = PyObject_New(TaskGroupEnter, TaskGroupEnterType);
  if (!enter) return nullptr;
  Py_INCREF(group);
  enter->value = group;
  return reinterpret_cast<PyObject*>(enter);
}

PyObject* new_task_group_exit(PyObject* group) {
  auto* x = PyObject_GC_New(TaskGroupExit, TaskGroupExitType);
  if (!x) return nullptr;
  Py_INCREF(group);
  x->group = group;
  x->shielded = nullptr;
  x->inner = nullptr;
  x->state = YieldState::Fresh;
  PyObject_GC_Track(x);
  return reinterpret_cast<PyObject*>(x);
}

int register_task_group_awaitables(PyObject* module) {
  TaskGroupEnterType = add_type(module, &enter_spec);
  TaskGroupExitType = add_awaitable_type(module, exit_spec);
  return (TaskGroupEnterType && TaskGroupExitType) ? 0 : -1;
}

}  // namespace anyio
