// MemoryStreamOp on Trio: the op drives trio.lowlevel's own coroutines
// itself: checkpoint() (or checkpoint_if_cancelled() when it is going to
// park), then the operation; if it must wait, wait_task_rescheduled with an
// abort function that marks it aborted. Trio parks and wakes the task, the
// queues stay in the state. Trio's abort leaves the op linked (marked
// aborted) for the same rules as on asyncio. A Trio task can only be woken
// from its run's thread: a hand-off to a Trio waiter from another thread
// raises RuntimeError before changing anything.
#include "memory/memory.hpp"

namespace anyio::memory {

namespace {

PyObject* s_abort = nullptr;  // "_abort": the op's abort function for Trio

// Outside any event loop trio.lowlevel raises RuntimeError: report it as
// upstream does.
void fix_no_loop_error() {
  if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) return;
  PyObject *t, *v, *tb;
  PyErr_Fetch(&t, &v, &tb);
  if (current_backend() == Backend::None) {
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    raise_no_event_loop();
  } else {
    PyErr_Clear();  // an error of the check itself: keep trio.lowlevel's
    PyErr_Restore(t, v, tb);
  }
}

}  // namespace

// A parked Trio operation whose wait ended by an exception (Trio's
// cancellation after an abort, or the awaitable was closed): leave the queue
// (a sender withdraws its item) and hand back an item that was already ours.
void trio_interrupted(MemoryStreamOp* op) {
  op_unlink(op);
  Py_CLEAR(op->waker);
  if (op->outcome == Outcome::Granted && op->kind != OpKind::Send && op->item) {
    give_back(op->stream->state, op->item);
    op->item = nullptr;
  }
}

namespace {

// The wait of a parked Trio operation ended with an exception. A sender whose
// item was taken before its task resumed has completed: it returns, and the
// cancellation (level-triggered in Trio) comes at its next checkpoint.
PySendResult trio_wait_failed(MemoryStreamOp* op, PyObject** out) {
  trio_interrupted(op);
  if (op->kind == OpKind::Send && op->outcome == Outcome::Granted &&
      PyErr_ExceptionMatches(trio()->Cancelled)) {
    PyErr_Clear();
    *out = Py_NewRef(Py_None);
    return PYGEN_RETURN;
  }
  return PYGEN_ERROR;
}

PySendResult trio_after_check(MemoryStreamOp* op, PyObject** out) {
  int r = run_try(op);
  if (r != 0) {
    op->phase = OpPhase::Done;
    if (r < 0) {
      *out = nullptr;
      return PYGEN_ERROR;
    }
    op->outcome = Outcome::Granted;
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  const TrioLowlevel* tl = trio();  // loaded by trio_start
  if (!s_abort) s_abort = PyUnicode_InternFromString("_abort");
  PyObject* task = s_abort ? PyObject_CallNoArgs(tl->current_task) : nullptr;
  PyObject* abort = task ? PyObject_GetAttr(reinterpret_cast<PyObject*>(op), s_abort) : nullptr;
  if (!abort) {
    Py_XDECREF(task);
    op->phase = OpPhase::Done;
    *out = nullptr;
    return PYGEN_ERROR;
  }
  op->waker = task;
  op->thread = PyThread_get_thread_ident();
  q_push(queue_of(op->stream->state, op), op);
  op->inner = PyObject_CallOneArg(tl->wait_task_rescheduled, abort);
  Py_DECREF(abort);
  if (!op->inner) {
    op_unlink(op);
    Py_CLEAR(op->waker);
    op->phase = OpPhase::Done;
    *out = nullptr;
    return PYGEN_ERROR;
  }
  op->phase = OpPhase::TrioWait;
  return trio_step(op, Py_None, out);
}

}  // namespace

PySendResult trio_continue(MemoryStreamOp* op, PySendResult r, PyObject** out) {
  if (r == PYGEN_NEXT) return r;
  Py_CLEAR(op->inner);
  if (op->phase == OpPhase::TrioCheckpoint) {
    if (r == PYGEN_ERROR) {
      op->phase = OpPhase::Done;
      fix_no_loop_error();
      return r;
    }
    Py_CLEAR(*out);
    return trio_after_check(op, out);
  }
  op->phase = OpPhase::Done;
  if (r == PYGEN_ERROR) return trio_wait_failed(op, out);
  Py_CLEAR(*out);
  return finish_woken(op, out);
}

PySendResult trio_step(MemoryStreamOp* op, PyObject* arg, PyObject** out) {
  PySendResult r = PyIter_Send(op->inner, arg, out);
  return trio_continue(op, r, out);
}

PySendResult trio_start(MemoryStreamOp* op, PyObject* arg, PyObject** out) {
  *out = nullptr;
  const TrioLowlevel* tl = trio();
  if (!tl) {
    op->phase = OpPhase::Done;
    return PYGEN_ERROR;
  }
  op->on_trio = true;
  op->inner = PyObject_CallNoArgs(would_complete(op) ? tl->checkpoint : tl->checkpoint_if_cancelled);
  if (!op->inner) {
    op->phase = OpPhase::Done;
    return PYGEN_ERROR;
  }
  op->phase = OpPhase::TrioCheckpoint;
  return trio_step(op, arg, out);
}

// _abort(raise_cancel): Trio's abort function for a parked operation. Trio
// reschedules the task with the cancellation; the operation stays in its
// queue until the task runs again (as upstream's waiter entries do): peers
// pass over a receiver, a sender keeps offering its item, and the task sorts
// it out when it resumes.
PyObject* op_trio_abort(PyObject* self_obj, PyObject*) {
  auto* op = reinterpret_cast<MemoryStreamOp*>(self_obj);
  op->aborted = true;
  const TrioLowlevel* tl = trio();
  return tl ? Py_NewRef(tl->abort_succeeded) : nullptr;
}

}  // namespace anyio::memory
