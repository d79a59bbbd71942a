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

using TaskGroupEnterRefs = OwnedRefs<&TaskGroupEnter::value>;

// Not GC-tracked: it only refers to the group, which never refers back to it,
// and every `async with` of a task group makes one.
const AwaitableSpec enter_spec = {
    .name = "anyio._cpp.TaskGroupEnter",
    .send = enter_send,
    .throw_ = enter_throw,
    .close = enter_close,
    .gc = false,
};

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
  PyObject* rest =
      PyObject_VectorcallMethod(G.s_asyncio_exit, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  return start_inner(&self->inner, rest, Py_None, out);
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

using TaskGroupExitRefs = OwnedRefs<&TaskGroupExit::shielded, &TaskGroupExit::group, &TaskGroupExit::inner>;

const AwaitableSpec exit_spec = {
    .name = "anyio._cpp.TaskGroupExit",
    .send = exit_send,
    .throw_ = exit_throw,
    .close = close_shielded_yield<TaskGroupExit>,
    .clear = clear_unshielding<TaskGroupExitRefs>,
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
  TaskGroupEnterType = add_awaitable_type<TaskGroupEnter, TaskGroupEnterRefs>(module, enter_spec);
  TaskGroupExitType = add_awaitable_type<TaskGroupExit, TaskGroupExitRefs>(module, exit_spec);
  return (TaskGroupEnterType && TaskGroupExitType) ? 0 : -1;
}

}  // namespace anyio
