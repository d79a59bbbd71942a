// Checkpoints as C awaitables: no Python coroutine per call. On asyncio a
// checkpoint is a cancellation check plus one bare `yield` (one loop step); on
// Trio it forwards to trio.lowlevel's own checkpoint coroutines.

#include "cancel/core.hpp"
#include "common/awaitable.hpp"

namespace anyio {
namespace {

// Which checkpoint: also the index into Trio's three (start_trio_checkpoint).
enum Kind : unsigned char { CHECKPOINT = 0, IF_CANCELLED = 1, SHIELDED = 2 };

struct Checkpoint {
  PyObject_HEAD
  unsigned char kind;
  YieldState state;
  PyObject* shielded;  // owner of the TaskState whose shielded_yield we set
  PyObject* inner;     // the trio coroutine we forward to
};

PyTypeObject* CheckpointType = nullptr;

void release_shield(Checkpoint* self) { unshield_yield(&self->shielded); }

// On Trio the checkpoint is Trio's own checkpoint coroutine, which this one
// forwards to from now on.
PySendResult start_trio_checkpoint(Checkpoint* self, PyObject* arg, PyObject** out) {
  static PyObject* TrioLowlevel::* const by_kind[] = {&TrioLowlevel::checkpoint,
                                                      &TrioLowlevel::checkpoint_if_cancelled,
                                                      &TrioLowlevel::cancel_shielded_checkpoint};
  const TrioLowlevel* tr = trio();
  self->inner = tr ? PyObject_CallNoArgs(tr->*by_kind[self->kind]) : nullptr;
  if (!self->inner) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  return inner_send(&self->inner, arg, out);
}

PySendResult cp_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<Checkpoint*>(self_obj);
  if (self->inner) return inner_send(&self->inner, arg, out);
  if (self->state == YieldState::Yielded) {
    release_shield(self);
    self->state = YieldState::Done;
    Py_INCREF(Py_None);
    *out = Py_None;
    return PYGEN_RETURN;
  }
  if (self->state == YieldState::Done) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited checkpoint");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  TaskState* t = tls_current;
  if (!t) {
    switch (current_backend()) {
      case Backend::Asyncio:
        t = task_state_if_any();
        break;
      case Backend::Trio:
        return start_trio_checkpoint(self, arg, out);
      case Backend::None:
        raise_no_event_loop();
        *out = nullptr;
        return PYGEN_ERROR;
      case Backend::Error:
        *out = nullptr;
        return PYGEN_ERROR;
    }
  }
  if (self->kind != SHIELDED && raise_if_cancelled(t)) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  if (self->kind == IF_CANCELLED) {
    self->state = YieldState::Done;
    Py_INCREF(Py_None);
    *out = Py_None;
    return PYGEN_RETURN;
  }
  if (self->kind == SHIELDED) shield_yield(t, &self->shielded);
  self->state = YieldState::Yielded;
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_NEXT;
}

PyObject* cp_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<Checkpoint*>(self_obj);
  release_shield(self);
  self->state = YieldState::Done;
  if (self->inner) {
    PyObject* out = nullptr;
    return send_result_to_python(inner_throw(&self->inner, args, nargs, &out), out);
  }
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* cp_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<Checkpoint*>(self_obj);
  release_shield(self);
  self->state = YieldState::Done;
  if (self->inner) return inner_close(&self->inner);
  Py_RETURN_NONE;
}

int cp_traverse(Checkpoint* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->shielded);
  Py_VISIT(self->inner);
  return 0;
}

int cp_clear(Checkpoint* self) {
  release_shield(self);
  Py_CLEAR(self->inner);
  return 0;
}

const AwaitableSpec cp_spec = {
    .name = "anyio._cpp.Checkpoint",
    .basicsize = sizeof(Checkpoint),
    .send = cp_send,
    .throw_ = cp_throw,
    .close = cp_close,
    .traverse = reinterpret_cast<traverseproc>(cp_traverse),
    .clear = reinterpret_cast<inquiry>(cp_clear),
};

PyObject* make(unsigned char kind) {
  auto* self = PyObject_GC_New(Checkpoint, CheckpointType);
  if (!self) return nullptr;
  self->kind = kind;
  self->state = YieldState::Fresh;
  self->shielded = nullptr;
  self->inner = nullptr;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

PyObject* fn_checkpoint(PyObject*, PyObject*) { return make(CHECKPOINT); }
PyObject* fn_checkpoint_if_cancelled(PyObject*, PyObject*) { return make(IF_CANCELLED); }
PyObject* fn_cancel_shielded_checkpoint(PyObject*, PyObject*) { return make(SHIELDED); }

PyMethodDef module_fns[] = {
    {"checkpoint", fn_checkpoint, METH_NOARGS,
     "checkpoint()\n--\n\nCheck for cancellation and let other tasks run (one loop step)."},
    {"checkpoint_if_cancelled", fn_checkpoint_if_cancelled, METH_NOARGS,
     "checkpoint_if_cancelled()\n--\n\nRaise the cancellation exception if the current "
     "task is cancelled; never yields otherwise."},
    {"cancel_shielded_checkpoint", fn_cancel_shielded_checkpoint, METH_NOARGS,
     "cancel_shielded_checkpoint()\n--\n\nLet other tasks run (one loop step) without "
     "checking for cancellation."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_checkpoint(PyObject* module) {
  CheckpointType = add_awaitable_type(module, cp_spec);
  if (!CheckpointType) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio
