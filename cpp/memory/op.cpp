// MemoryStreamOp on asyncio, and the awaitable's type (its Trio steps are in
// op_trio.cpp).
//
// Order of a hand-off (upstream anyio's): an operation is a checkpoint first
// and only then tries; one that completes returns without yielding again. So
// the task that performs a hand-off continues first, and the task it wakes
// runs at its next turn; an operation that finds its peer closed raises only
// after its checkpoint. An operation that cannot complete parks at once
// (parking is its scheduling point) after a cancellation check.
//
// asyncio: the op checks for cancellation, then either yields once (nothing
// has happened yet, so a cancellation landing on that yield simply raises)
// and tries, or parks on a loop future. A parked receiver whose task is
// cancelled is passed over; a parked sender keeps offering its item until its
// task resumes, and what happened by then decides: a send whose item was
// taken returns (the cancellation lands at the next checkpoint), one whose
// item was not is withdrawn and raises. A receiver cancelled after it was
// handed an item gives the item back, so nothing is lost or duplicated.
#include "common/awaitable.hpp"
#include "introspect/task_tree.hpp"
#include "memory/memory.hpp"

namespace anyio::memory {

PyTypeObject* MemoryStreamOpType = nullptr;

void op_unlink(MemoryStreamOp* op) {
  if (op->linked && op->stream) {
    q_remove(queue_of(op->stream->state, op), op);
    Py_DECREF(op);
  }
}

void raise_outcome(MemoryStreamOp* op) {
  switch (op->outcome) {
    case Outcome::End:
      if (op->kind == OpKind::Anext)
        PyErr_SetNone(PyExc_StopAsyncIteration);
      else
        raise_anyio(&AnyioExceptions::EndOfStream);
      break;
    case Outcome::Closed:
      raise_anyio(&AnyioExceptions::ClosedResourceError);
      break;
    case Outcome::Broken:
      raise_anyio(&AnyioExceptions::BrokenResourceError);
      break;
    default:
      PyErr_SetString(PyExc_RuntimeError, "memory stream operation resumed before it completed");
  }
}

PySendResult finish_woken(MemoryStreamOp* op, PyObject** out) {
  Py_CLEAR(op->waker);
  if (op->outcome == Outcome::Granted) {
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  op_unlink(op);
  raise_outcome(op);
  return PYGEN_ERROR;
}

PyObject* take_value(MemoryStreamOp* op) {
  if (op->kind == OpKind::Send) Py_RETURN_NONE;
  PyObject* item = op->item;
  op->item = nullptr;
  return item ? item : Py_NewRef(Py_None);
}

namespace {

// __anext__ ends the iteration where receive() raises EndOfStream.
void end_of_stream_to_stop() {
  const AnyioExceptions* exc = anyio_exceptions();
  if (exc && PyErr_ExceptionMatches(exc->EndOfStream)) {
    PyErr_Clear();
    PyErr_SetNone(PyExc_StopAsyncIteration);
  }
}

}  // namespace

int run_try(MemoryStreamOp* op) {
  if (op->kind == OpKind::Send) {
    int r = send_try(op->stream, op->item);
    if (r == 1) Py_CLEAR(op->item);  // the buffer or the receiver holds it now
    return r;
  }
  PyObject* got = nullptr;
  int r = recv_try(op->stream, &got);
  if (r == 1) Py_XSETREF(op->item, got);
  if (r < 0 && op->kind == OpKind::Anext) end_of_stream_to_stop();
  return r;
}

// Both backends make an operation that would complete a full checkpoint
// before trying; one that is going to park only checks for cancellation,
// parking being its scheduling point.
bool would_complete(MemoryStreamOp* op) {
  MemoryStream* s = op->stream;
  MemoryStreamState* st = s->state;
  if (s->closed) return true;
  if (op->kind == OpKind::Send) {
    return st->open_recv <= 0 || !st->receivers.empty() ||
           static_cast<Py_ssize_t>(st->buffer->size()) < st->max;
  }
  return !st->buffer->empty() || !st->senders.empty() || st->open_send <= 0;
}

namespace {

// Parks the operation on a new future of `loop`.
PySendResult park(MemoryStreamOp* op, PyObject* loop, PyObject** out) {
  PyObject* fut = sync::new_parking_future(loop);
  if (!fut) {
    op->phase = OpPhase::Done;
    return PYGEN_ERROR;
  }
  op->waker = fut;
  q_push(queue_of(op->stream->state, op), op);
  op->phase = OpPhase::Parked;
  *out = Py_NewRef(fut);
  return PYGEN_NEXT;
}

// Whether a scope's cancellation reaches the current task (which then gets it
// after its checkpoint).
bool cancel_pending() {
  TaskState* t = task_state_if_any();
  return t && effective_cancel(t);
}

PySendResult op_start(MemoryStreamOp* op, PyObject* arg, PyObject** out) {
  *out = nullptr;
  PyObject* loop = running_loop();
  if (!loop) {
    if (PyErr_Occurred()) return PYGEN_ERROR;
    // Outside Trio as well: NoEventLoopError (trio.lowlevel's own checks are
    // not reliable once a guest run has been left in this thread).
    Backend b = current_backend();
    if (b == Backend::Trio) return trio_start(op, arg, out);
    if (b == Backend::None) raise_no_event_loop();
    return PYGEN_ERROR;
  }
  if (would_complete(op) || cancel_pending()) {
    // The checkpoint: other tasks run before the operation happens, and a
    // cancellation raises only after that yield, as upstream's checkpoint
    // does (a cancelled send lets the peer it would have fed run first). The
    // operation is tried, or the cancellation raised, when the task resumes.
    op->phase = OpPhase::Checkpoint;
    *out = Py_NewRef(Py_None);
    return PYGEN_NEXT;
  }
  return park(op, loop, out);
}

// After the checkpoint: completes (returning without another yield, so this
// task continues before the one it woke), raises, or parks.
PySendResult op_after_check(MemoryStreamOp* op, PyObject** out) {
  *out = nullptr;
  if (raise_if_cancelled(task_state_if_any()) != 0) {
    op->phase = OpPhase::Done;
    return PYGEN_ERROR;
  }
  int r = run_try(op);
  if (r != 0) {
    op->phase = OpPhase::Done;
    if (r < 0) return PYGEN_ERROR;
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  PyObject* loop = running_loop();
  if (!loop) {
    op->phase = OpPhase::Done;
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return PYGEN_ERROR;
  }
  return park(op, loop, out);
}

PySendResult op_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* op = reinterpret_cast<MemoryStreamOp*>(self_obj);
  switch (op->phase) {
    case OpPhase::Fresh:
      return op_start(op, arg, out);
    case OpPhase::TrioCheckpoint:
    case OpPhase::TrioWait:
      return trio_step(op, arg, out);
    case OpPhase::Checkpoint:
      return op_after_check(op, out);
    case OpPhase::Parked:
      op->phase = OpPhase::Done;
      *out = nullptr;
      return finish_woken(op, out);
    default:
      PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited memory stream operation");
      *out = nullptr;
      return PYGEN_ERROR;
  }
}

// A send that delivered its item is reported as done even if a cancellation
// arrived afterwards (asyncio's task.cancel() can throw into a task whose
// future already has its result). The cancellation is not dropped: it is
// re-armed on the task, so it lands at the task's next suspension.
int rearm_cancel(PyObject* exc) {
  PyObject* loop = running_loop();
  if (!loop) return PyErr_Occurred() ? -1 : 0;
  PyObject* task = PyObject_CallOneArg(G.current_task, loop);
  if (!task) return -1;
  if (task == Py_None) {
    Py_DECREF(task);
    return 0;
  }
  PyObject* msg = Py_None;
  PyObject* args = PyObject_GetAttrString(exc, "args");
  if (args && PyTuple_Check(args) && PyTuple_GET_SIZE(args) > 0) msg = PyTuple_GET_ITEM(args, 0);
  int rc = 0;
  if (PyObject_HasAttr(task, G.s_uncancel)) {
    PyObject* r = call_method0(task, G.s_uncancel);
    if (!r) rc = -1;
    Py_XDECREF(r);
  }
  if (rc == 0) {
    PyObject* r = call_method1(task, G.s_cancel, msg);
    if (!r) rc = -1;
    Py_XDECREF(r);
  }
  Py_XDECREF(args);
  Py_DECREF(task);
  return rc;
}

enum Settle { S_RAISE, S_RETURN };

// Undoes or settles an operation interrupted by `exc` (nullptr: close()).
// S_RETURN means the operation completed and must be reported as such.
Settle settle_interrupted(MemoryStreamOp* op, PyObject* exc) {
  OpPhase phase = op->phase;
  op->phase = OpPhase::Done;
  Py_CLEAR(op->waker);
  bool completed = false;
  if (phase == OpPhase::Parked) {
    op_unlink(op);
    completed = op->outcome == Outcome::Granted;
  }
  if (!completed) return S_RAISE;
  if (op->kind != OpKind::Send) {
    if (op->item) give_back(op->stream->state, op->item);
    op->item = nullptr;
    return S_RAISE;
  }
  if (!exc) return S_RETURN;  // close(): nothing to undo
  if (PyObject_TypeCheck(exc, reinterpret_cast<PyTypeObject*>(G.CancelledError))) {
    // A scope's cancellation needs nothing more: the scope stays cancelled,
    // so the next checkpoint raises. A native one is requested again.
    if (!is_scope_cancelled_error(exc) && rearm_cancel(exc) < 0)
      PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(op));
    return S_RETURN;
  }
  return S_RAISE;
}

PyObject* op_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* op = reinterpret_cast<MemoryStreamOp*>(self_obj);
  if (op->inner) {
    PyObject* out = nullptr;
    PySendResult r = forward_throw(op->inner, args, nargs, &out);
    r = trio_continue(op, r, &out);
    return send_result_to_python(r, out);
  }
  PyObject* exc = PyExceptionInstance_Check(args[0]) ? args[0] : (nargs > 1 ? args[1] : nullptr);
  if (exc && !PyExceptionInstance_Check(exc)) exc = nullptr;
  if (settle_interrupted(op, exc) == S_RETURN) {
    set_stop_iteration(take_value(op));
    return nullptr;
  }
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* op_close(PyObject* self_obj, PyObject*) {
  auto* op = reinterpret_cast<MemoryStreamOp*>(self_obj);
  if (op->inner) {
    PyObject* r = inner_close(&op->inner);
    if (op->phase == OpPhase::TrioWait) trio_interrupted(op);
    op->phase = OpPhase::Done;
    return r;
  }
  settle_interrupted(op, nullptr);
  Py_RETURN_NONE;
}

using MemoryStreamOpRefs =
    OwnedRefs<&MemoryStreamOp::stream, &MemoryStreamOp::item, &MemoryStreamOp::waker, &MemoryStreamOp::inner>;

int op_clear(PyObject* self) {
  op_unlink(reinterpret_cast<MemoryStreamOp*>(self));
  return MemoryStreamOpRefs::clear(self);
}

PyMethodDef op_methods[] = {
    {"_abort", op_trio_abort, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

const AwaitableSpec op_spec = {
    .name = "anyio._cpp.MemoryStreamOp",
    .send = op_send,
    .throw_ = op_throw,
    .close = op_close,
    .clear = op_clear,
    .methods = op_methods,
};

}  // namespace

PyObject* new_op(MemoryStream* stream, OpKind kind, PyObject* item) {
  auto* op = PyObject_GC_New(MemoryStreamOp, MemoryStreamOpType);
  if (!op) return nullptr;
  op->prev = op->next = nullptr;
  Py_INCREF(stream);
  op->stream = stream;
  Py_XINCREF(item);
  op->item = item;
  op->waker = nullptr;
  op->inner = nullptr;
  op->thread = 0;
  op->kind = kind;
  op->phase = OpPhase::Fresh;
  op->outcome = Outcome::Waiting;
  op->linked = false;
  op->on_trio = false;
  op->aborted = false;
  PyObject_GC_Track(op);
  return reinterpret_cast<PyObject*>(op);
}

// introspection (task tree): what a MemoryStreamOp waits on, read at snapshot time only.
PyObject* op_waits_on(PyObject* obj) {
  if (!MemoryStreamOpType || Py_TYPE(obj) != MemoryStreamOpType) Py_RETURN_NONE;
  auto* op = reinterpret_cast<MemoryStreamOp*>(obj);
  if (!op->stream || op->phase == OpPhase::Done) Py_RETURN_NONE;
  const char* kind = op->kind == OpKind::Send ? "send" : "receive";
  auto* stream = reinterpret_cast<PyObject*>(op->stream);
  if (!op->linked) return Py_BuildValue("(sOOO)", kind, stream, Py_False, Py_None);
  return Py_BuildValue("(sOOd)", kind, stream, Py_True, introspect_clock() - op->parked_at);
}

int register_op_type(PyObject* module) {
  MemoryStreamOpType = add_awaitable_type<MemoryStreamOp, MemoryStreamOpRefs>(module, op_spec);
  return MemoryStreamOpType ? 0 : -1;
}

}  // namespace anyio::memory
