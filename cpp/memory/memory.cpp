// Memory object streams: the shared state (buffer, open-clone counts, FIFO
// queues of parked senders and receivers), the two stream base types whose
// methods are CPython slots, and the awaitable that every send/receive/__anext__
// returns.
//
// One awaitable (`Op`) is also the waiter node: when an operation cannot
// complete at once it links itself into the state's queue and parks, so parking
// costs one future and no other allocation. The state owns a reference to every
// linked Op. Whoever completes a parked Op (a peer's send/receive, or a close)
// first unlinks it, records the outcome in it (the item, or which error), and
// only then wakes its task; a woken task reads its outcome from the Op. An item
// therefore always has exactly one owner: the buffer, a sender's Op or a
// receiver's Op, never two and never none.
//
// Order of a hand-off (upstream anyio's): an operation is a checkpoint first
// and only then tries; one that completes returns without yielding again. So
// the task that performs a hand-off continues first, and the task it wakes
// runs at its next turn; an operation that finds its peer closed raises only
// after its checkpoint. An operation that cannot complete parks at once
// (parking is its scheduling point) after a cancellation check.
//
// asyncio: an Op is a C awaitable. It checks for cancellation, then either
// yields once (nothing has happened yet, so a cancellation landing on that
// yield simply raises) and tries, or parks on a loop future. A parked receiver
// whose task is cancelled is passed over; a parked sender keeps offering its
// item until its task resumes, and what happened by then decides: a send whose
// item was taken returns (the cancellation lands at the next checkpoint), one
// whose item was not is withdrawn and raises. A receiver cancelled after it was
// handed an item gives the item back, so nothing is lost or duplicated.
//
// Trio: the Op drives trio.lowlevel's checkpoint and wait_task_rescheduled
// coroutines itself; Trio parks and wakes the task, the queues stay here.
// Trio's abort leaves the Op linked (marked aborted) for the same rules. A Trio
// task can only be woken from its run's thread: a hand-off to a Trio waiter
// from another thread raises RuntimeError before changing anything.
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <deque>
#include <vector>

#include "common/awaitable.hpp"
#include "cancel/core.hpp"
#include "introspect/task_tree.hpp"

namespace anyio {
namespace {

// Set once by anyio.streams.memory: the exception types and Python helpers.
struct Config {
  PyObject* WouldBlock = nullptr;
  PyObject* EndOfStream = nullptr;
  PyObject* ClosedResourceError = nullptr;
  PyObject* BrokenResourceError = nullptr;
  PyObject* statistics_cls = nullptr;  // MemoryObjectStreamStatistics
  PyObject* trio_setup = nullptr;      // configures the Trio side or raises NoEventLoopError
  // trio.lowlevel functions, set on first use on Trio
  PyObject* trio_reschedule = nullptr;
  PyObject* abort_succeeded = nullptr;  // Abort.SUCCEEDED
  PyObject* trio_checkpoint = nullptr;
  PyObject* trio_checkpoint_if_cancelled = nullptr;
  PyObject* trio_current_task = nullptr;
  PyObject* trio_wait = nullptr;       // wait_task_rescheduled
  PyObject* trio_cancelled = nullptr;  // trio.Cancelled
  PyObject* s_abort = nullptr;
  PyObject* s_uncancel = nullptr;
};
Config cfg;

struct State;
struct Op;

struct Stream {
  PyObject_HEAD
  State* state;  // strong
  unsigned char closed;
  unsigned char is_send;
};

struct Queue {
  Op* head = nullptr;
  Op* tail = nullptr;
  Py_ssize_t count = 0;
};

struct State {
  PyObject_HEAD
  std::deque<PyObject*>* buffer;  // strong references, oldest first
  Py_ssize_t max;                 // the limit, math.inf and huge ints clamped
  PyObject* max_obj;              // the limit as given, for statistics()
  Py_ssize_t open_send;
  Py_ssize_t open_recv;
  Queue* senders;
  Queue* receivers;
};

enum Kind : unsigned char { K_SEND = 0, K_RECV = 1, K_ANEXT = 2 };
// P_CHECKED: asyncio, yielded at the checkpoint, nothing done yet.
enum Phase : unsigned char { P_FRESH, P_CHECKED, P_PARKED, P_TRIO_CHECK, P_TRIO_WAIT, P_DONE };
enum Outcome : unsigned char { O_WAITING, O_GRANTED, O_END, O_CLOSED, O_BROKEN };

struct Op {
  PyObject_HEAD
  Op* prev;
  Op* next;
  Stream* stream;        // strong
  PyObject* item;        // send: the item until delivered; receive: the item received
  PyObject* waker;       // asyncio: the future parked on; Trio: the task
  PyObject* inner;       // Trio: the trio.lowlevel coroutine we forward to
  unsigned long thread;  // Trio: the thread of the run the task is parked in
  unsigned char kind;
  unsigned char phase;
  unsigned char outcome;
  unsigned char linked;
  unsigned char on_trio;
  unsigned char aborted;  // Trio: the wait was aborted, the task is rescheduled
};

PyTypeObject* StateType = nullptr;
PyTypeObject* SendBaseType = nullptr;
PyTypeObject* RecvBaseType = nullptr;
PyTypeObject* OpType = nullptr;

bool configured() {
  if (cfg.WouldBlock) return true;
  PyErr_SetString(PyExc_RuntimeError, "anyio.streams.memory is not initialised");
  return false;
}

// --- queues ------------------------------------------------------------------

Queue& queue_of(State* st, Op* op) { return op->kind == K_SEND ? *st->senders : *st->receivers; }

void q_push(Queue& q, Op* op) {
  Py_INCREF(op);
  op->prev = q.tail;
  op->next = nullptr;
  if (q.tail)
    q.tail->next = op;
  else
    q.head = op;
  q.tail = op;
  q.count++;
  op->linked = 1;
}

// Unlinks `op`; the caller inherits the reference the queue held.
void q_remove(Queue& q, Op* op) {
  if (op->prev)
    op->prev->next = op->next;
  else
    q.head = op->next;
  if (op->next)
    op->next->prev = op->prev;
  else
    q.tail = op->prev;
  op->prev = op->next = nullptr;
  q.count--;
  op->linked = 0;
}

// A parked receiver whose task was cancelled (asyncio: its future is done;
// Trio: Trio aborted its wait) must not be handed an item, since its task
// wakes into the cancellation.
bool receiver_live(Op* w) {
  if (w->on_trio) return !w->aborted;
  PyObject* d = call_method0(w->waker, G.s_done);
  if (!d) {
    PyErr_WriteUnraisable(w->waker);
    return true;
  }
  bool live = d == Py_False;
  Py_DECREF(d);
  return live;
}

Op* first_live_receiver(Queue& q) {
  while (Op* w = q.head) {
    if (receiver_live(w)) return w;
    q_remove(q, w);  // its own throw() sees it unlinked and just re-raises
    Py_DECREF(w);
  }
  return nullptr;
}

// Trio can reschedule a task only from its run's thread. Checked before the
// state changes, so a hand-off attempted from another thread (a misuse)
// raises to its caller and leaves the stream as it was.
bool wakeable(Op* w) {
  if (!w->on_trio || w->thread == PyThread_get_thread_ident()) return true;
  PyErr_SetString(PyExc_RuntimeError, "must be called from async context");
  return false;
}

// Wakes an unlinked waiter whose outcome is set, unless its task is already
// on its way back (cancelled: the future is done, or Trio aborted the wait).
// Other failures (a closed loop, say) cannot be reported to the caller
// without undoing the transfer, so they are reported as unraisable.
void wake(Op* w) {
  if (w->aborted) return;
  PyObject* r;
  if (w->on_trio) {
    r = PyObject_CallOneArg(cfg.trio_reschedule, w->waker);
  } else {
    r = call_method1(w->waker, G.s_set_result, Py_None);
    if (!r) {
      PyObject *t, *v, *tb;
      PyErr_Fetch(&t, &v, &tb);
      PyObject* d = call_method0(w->waker, G.s_done);
      Py_XDECREF(d);
      if (d == Py_True) {  // cancelled meanwhile: its task is on its way
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
      } else {
        PyErr_Clear();
        PyErr_Restore(t, v, tb);
      }
    }
  }
  if (!r && PyErr_Occurred()) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(w));
  Py_XDECREF(r);
}

// Hands `item` (stolen) to the waiting receiver `w` (linked in `q`).
void grant_receiver(Queue& q, Op* w, PyObject* item) {
  q_remove(q, w);
  Py_XSETREF(w->item, item);
  w->outcome = O_GRANTED;
  wake(w);
  Py_DECREF(w);
}

// Takes the item of the waiting sender `w` (linked in `q`); returns it (new ref).
PyObject* take_from_sender(Queue& q, Op* w) {
  q_remove(q, w);
  PyObject* item = w->item;
  w->item = nullptr;
  w->outcome = O_GRANTED;
  wake(w);
  Py_DECREF(w);
  return item;
}

// A receiver that was handed an item but is not going to return it (it was
// cancelled or closed first) passes it to the next live receiver or puts it
// back at the front of the buffer, where it was. Steals `item`.
void give_back(State* st, PyObject* item) {
  Op* w = first_live_receiver(*st->receivers);
  if (w && wakeable(w)) {
    grant_receiver(*st->receivers, w, item);
    return;
  }
  if (w) PyErr_Clear();
  st->buffer->push_front(item);
}

// --- the operations --------------------------------------------------------
// Each returns 1 when done, 0 when it would block, -1 with an exception set.

int send_try(Stream* s, PyObject* item) {
  if (s->closed) {
    PyErr_SetNone(cfg.ClosedResourceError);
    return -1;
  }
  State* st = s->state;
  if (st->open_recv <= 0) {
    PyErr_SetNone(cfg.BrokenResourceError);
    return -1;
  }
  if (Op* w = first_live_receiver(*st->receivers)) {
    if (!wakeable(w)) return -1;
    Py_INCREF(item);
    grant_receiver(*st->receivers, w, item);
    return 1;
  }
  if (static_cast<Py_ssize_t>(st->buffer->size()) < st->max) {
    Py_INCREF(item);
    st->buffer->push_back(item);
    return 1;
  }
  return 0;
}

int recv_try(Stream* s, PyObject** out) {
  if (s->closed) {
    PyErr_SetNone(cfg.ClosedResourceError);
    return -1;
  }
  State* st = s->state;
  // Every parked sender offers its item, a cancelled one too until its task
  // resumes and withdraws it.
  Op* w = st->senders->head;
  if (w && !wakeable(w)) return -1;
  if (!st->buffer->empty()) {
    *out = st->buffer->front();
    st->buffer->pop_front();
    // A sender waits only while the buffer is full: its item takes the slot.
    if (w) st->buffer->push_back(take_from_sender(*st->senders, w));
    return 1;
  }
  if (w) {
    *out = take_from_sender(*st->senders, w);
    return 1;
  }
  if (st->open_send <= 0) {
    PyErr_SetNone(cfg.EndOfStream);
    return -1;
  }
  return 0;
}

// Returns -1 (nothing changed) if a waiter to wake is a Trio task and this is
// not its thread.
int stream_close(Stream* s) {
  if (s->closed) return 0;
  State* st = s->state;
  bool last = (s->is_send ? st->open_send : st->open_recv) == 1;
  Queue& own = s->is_send ? *st->senders : *st->receivers;
  Queue& peers = s->is_send ? *st->receivers : *st->senders;
  for (Op* w = own.head; w; w = w->next)
    if (w->stream == s && !wakeable(w)) return -1;
  if (last)
    for (Op* w = peers.head; w; w = w->next)
      if (!wakeable(w)) return -1;
  s->closed = 1;
  std::vector<Op*> woken;
  auto take = [&](Queue& q, bool only_ours, unsigned char outcome) {
    for (Op* w = q.head; w;) {
      Op* n = w->next;
      if (!only_ours || w->stream == s) {
        q_remove(q, w);
        w->outcome = outcome;
        woken.push_back(w);
      }
      w = n;
    }
  };
  if (s->is_send) {
    st->open_send--;
    take(*st->senders, true, O_CLOSED);
    if (st->open_send == 0) take(*st->receivers, false, O_END);
  } else {
    st->open_recv--;
    take(*st->receivers, true, O_CLOSED);
    if (st->open_recv == 0) take(*st->senders, false, O_BROKEN);
  }
  for (Op* w : woken) {
    wake(w);
    Py_DECREF(w);
  }
  return 0;
}

// --- Op: the awaitable -----------------------------------------------------

void op_unlink(Op* op) {
  if (op->linked && op->stream) {
    q_remove(queue_of(op->stream->state, op), op);
    Py_DECREF(op);
  }
}

// Raises the error recorded as the outcome of a parked operation.
void raise_outcome(Op* op) {
  switch (op->outcome) {
    case O_END:
      if (op->kind == K_ANEXT)
        PyErr_SetNone(PyExc_StopAsyncIteration);
      else
        PyErr_SetNone(cfg.EndOfStream);
      break;
    case O_CLOSED:
      PyErr_SetNone(cfg.ClosedResourceError);
      break;
    case O_BROKEN:
      PyErr_SetNone(cfg.BrokenResourceError);
      break;
    default:
      PyErr_SetString(PyExc_RuntimeError, "memory stream operation resumed before it completed");
  }
}

// The value an operation that completed returns (new reference).
PyObject* take_value(Op* op) {
  if (op->kind == K_SEND) Py_RETURN_NONE;
  PyObject* item = op->item;
  op->item = nullptr;
  return item ? item : Py_NewRef(Py_None);
}

void convert_anext_error(Op* op) {
  if (op->kind == K_ANEXT && PyErr_ExceptionMatches(cfg.EndOfStream)) {
    PyErr_Clear();
    PyErr_SetNone(PyExc_StopAsyncIteration);
  }
}

int run_try(Op* op) {
  if (op->kind == K_SEND) {
    int r = send_try(op->stream, op->item);
    if (r == 1) Py_CLEAR(op->item);  // the buffer or the receiver holds it now
    return r;
  }
  PyObject* got = nullptr;
  int r = recv_try(op->stream, &got);
  if (r == 1) Py_XSETREF(op->item, got);
  if (r < 0) convert_anext_error(op);
  return r;
}

// Whether trying now would complete (or raise) rather than park. Both
// backends make this a full checkpoint before trying; an operation that is
// going to park only checks for cancellation, parking being its scheduling
// point.
bool would_complete(Op* op) {
  Stream* s = op->stream;
  State* st = s->state;
  if (s->closed) return true;
  if (op->kind == K_SEND) {
    return st->open_recv <= 0 || st->receivers->head || static_cast<Py_ssize_t>(st->buffer->size()) < st->max;
  }
  return !st->buffer->empty() || st->senders->head || st->open_send <= 0;
}

// --- Trio: the op drives trio.lowlevel's own coroutines --------------------
// checkpoint() (or checkpoint_if_cancelled() when it is going to park), then
// the operation; if it must wait, wait_task_rescheduled with an abort
// function that marks it aborted.

// Outside any event loop trio.lowlevel raises RuntimeError: report it as
// upstream does.
void fix_no_loop_error() {
  if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) return;
  PyObject *t, *v, *tb;
  PyErr_Fetch(&t, &v, &tb);
  PyObject* in_trio = PyObject_CallMethod(G.glue, "in_trio", nullptr);
  if (in_trio == Py_False) {
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    PyObject* r = PyObject_CallMethod(G.glue, "raise_no_event_loop", nullptr);
    Py_XDECREF(r);
  } else {
    PyErr_Restore(t, v, tb);
  }
  Py_XDECREF(in_trio);
}

// A parked Trio operation whose wait ended by an exception (Trio's
// cancellation after an abort, or the awaitable was closed): leave the queue
// (a sender withdraws its item) and hand back an item that was already ours.
void trio_interrupted(Op* op) {
  op_unlink(op);
  Py_CLEAR(op->waker);
  if (op->outcome == O_GRANTED && op->kind != K_SEND && op->item) {
    give_back(op->stream->state, op->item);
    op->item = nullptr;
  }
}

// The wait of a parked Trio operation ended with an exception. A sender whose
// item was taken before its task resumed has completed: it returns, and the
// cancellation (level-triggered in Trio) comes at its next checkpoint.
PySendResult trio_wait_failed(Op* op, PyObject** out) {
  trio_interrupted(op);
  if (op->kind == K_SEND && op->outcome == O_GRANTED && PyErr_ExceptionMatches(cfg.trio_cancelled)) {
    PyErr_Clear();
    *out = Py_NewRef(Py_None);
    return PYGEN_RETURN;
  }
  return PYGEN_ERROR;
}

PySendResult trio_step(Op* op, PyObject* arg, PyObject** out);

PySendResult trio_after_check(Op* op, PyObject** out) {
  int r = run_try(op);
  if (r != 0) {
    op->phase = P_DONE;
    if (r < 0) {
      *out = nullptr;
      return PYGEN_ERROR;
    }
    op->outcome = O_GRANTED;
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  PyObject* task = PyObject_CallNoArgs(cfg.trio_current_task);
  PyObject* abort = task ? PyObject_GetAttr(reinterpret_cast<PyObject*>(op), cfg.s_abort) : nullptr;
  if (!abort) {
    Py_XDECREF(task);
    op->phase = P_DONE;
    *out = nullptr;
    return PYGEN_ERROR;
  }
  op->waker = task;
  op->thread = PyThread_get_thread_ident();
  q_push(queue_of(op->stream->state, op), op);
  op->inner = PyObject_CallOneArg(cfg.trio_wait, abort);
  Py_DECREF(abort);
  if (!op->inner) {
    op_unlink(op);
    Py_CLEAR(op->waker);
    op->phase = P_DONE;
    *out = nullptr;
    return PYGEN_ERROR;
  }
  op->phase = P_TRIO_WAIT;
  return trio_step(op, Py_None, out);
}

// What follows the inner coroutine's step `r`.
PySendResult trio_continue(Op* op, PySendResult r, PyObject** out) {
  if (r == PYGEN_NEXT) return r;
  Py_CLEAR(op->inner);
  if (op->phase == P_TRIO_CHECK) {
    if (r == PYGEN_ERROR) {
      op->phase = P_DONE;
      fix_no_loop_error();
      return r;
    }
    Py_CLEAR(*out);
    return trio_after_check(op, out);
  }
  op->phase = P_DONE;
  if (r == PYGEN_ERROR) return trio_wait_failed(op, out);
  Py_CLEAR(*out);
  Py_CLEAR(op->waker);
  if (op->outcome == O_GRANTED) {
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  op_unlink(op);
  raise_outcome(op);
  return PYGEN_ERROR;
}

PySendResult trio_step(Op* op, PyObject* arg, PyObject** out) {
  PySendResult r = PyIter_Send(op->inner, arg, out);
  return trio_continue(op, r, out);
}

PySendResult trio_start(Op* op, PyObject* arg, PyObject** out) {
  *out = nullptr;
  if (!cfg.trio_checkpoint) {
    PyObject* r = PyObject_CallNoArgs(cfg.trio_setup);
    if (!r) {
      op->phase = P_DONE;
      return PYGEN_ERROR;
    }
    Py_DECREF(r);
  }
  op->on_trio = 1;
  op->inner =
      PyObject_CallNoArgs(would_complete(op) ? cfg.trio_checkpoint : cfg.trio_checkpoint_if_cancelled);
  if (!op->inner) {
    op->phase = P_DONE;
    return PYGEN_ERROR;
  }
  op->phase = P_TRIO_CHECK;
  return trio_step(op, arg, out);
}

// Parks the operation on a new future of `loop`.
PySendResult park(Op* op, PyObject* loop, PyObject** out) {
  PyObject* fut = call_method0(loop, G.s_create_future);
  if (!fut) {
    op->phase = P_DONE;
    return PYGEN_ERROR;
  }
  if (PyObject_SetAttr(fut, G.s_asyncio_future_blocking, Py_True) < 0) {
    Py_DECREF(fut);
    op->phase = P_DONE;
    return PYGEN_ERROR;
  }
  op->waker = fut;
  q_push(queue_of(op->stream->state, op), op);
  op->phase = P_PARKED;
  *out = Py_NewRef(fut);
  return PYGEN_NEXT;
}

// 1 if the current task is effectively cancelled (with `raise_it`, the
// CancelledError is set), else 0. A task that never entered a scope cannot be
// cancelled by one.
int raise_if_cancelled_now(bool raise_it) {
  TaskState* t = tls_current;
  if (!t) {
    t = current_task_state(false);
    if (!t) {
      PyErr_Clear();
      return 0;
    }
  }
  CancelScope* origin = effective_cancel(t);
  if (!origin) return 0;
  if (raise_it) {
    PyObject* exc = make_cancelled_error(origin);
    if (exc) {
      PyErr_SetObject(G.CancelledError, exc);
      Py_DECREF(exc);
    }
  }
  return 1;
}

PySendResult op_start(Op* op, PyObject* arg, PyObject** out) {
  *out = nullptr;
  if (!configured()) return PYGEN_ERROR;
  PyObject* loop = running_loop();
  if (!loop) {
    if (PyErr_Occurred()) return PYGEN_ERROR;
    // Outside Trio as well: NoEventLoopError (trio.lowlevel's own checks are
    // not reliable once a guest run has been left in this thread).
    PyObject* in_trio = PyObject_CallMethod(G.glue, "in_trio", nullptr);
    if (!in_trio) return PYGEN_ERROR;
    bool yes = in_trio == Py_True;
    Py_DECREF(in_trio);
    if (!yes) {
      PyObject* r = PyObject_CallMethod(G.glue, "raise_no_event_loop", nullptr);
      Py_XDECREF(r);
      return PYGEN_ERROR;
    }
    return trio_start(op, arg, out);
  }
  if (would_complete(op) || raise_if_cancelled_now(false) != 0) {
    // The checkpoint: other tasks run before the operation happens, and a
    // cancellation raises only after that yield, as upstream's checkpoint
    // does (a cancelled send lets the peer it would have fed run first). The
    // operation is tried, or the cancellation raised, when the task resumes.
    op->phase = P_CHECKED;
    *out = Py_NewRef(Py_None);
    return PYGEN_NEXT;
  }
  return park(op, loop, out);
}

// After the checkpoint: completes (returning without another yield, so this
// task continues before the one it woke), raises, or parks.
PySendResult op_after_check(Op* op, PyObject** out) {
  *out = nullptr;
  if (raise_if_cancelled_now(true) != 0) {
    op->phase = P_DONE;
    return PYGEN_ERROR;
  }
  int r = run_try(op);
  if (r != 0) {
    op->phase = P_DONE;
    if (r < 0) return PYGEN_ERROR;
    *out = take_value(op);
    return PYGEN_RETURN;
  }
  PyObject* loop = running_loop();
  if (!loop) {
    op->phase = P_DONE;
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return PYGEN_ERROR;
  }
  return park(op, loop, out);
}

PySendResult op_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* op = reinterpret_cast<Op*>(self_obj);
  switch (op->phase) {
    case P_FRESH:
      return op_start(op, arg, out);
    case P_TRIO_CHECK:
    case P_TRIO_WAIT:
      return trio_step(op, arg, out);
    case P_CHECKED:
      return op_after_check(op, out);
    case P_PARKED:
      op->phase = P_DONE;
      Py_CLEAR(op->waker);
      if (op->outcome == O_GRANTED) {
        *out = take_value(op);
        return PYGEN_RETURN;
      }
      op_unlink(op);
      raise_outcome(op);
      *out = nullptr;
      return PYGEN_ERROR;
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
  if (PyObject_HasAttr(task, cfg.s_uncancel)) {
    PyObject* r = call_method0(task, cfg.s_uncancel);
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
Settle settle_interrupted(Op* op, PyObject* exc) {
  unsigned char phase = op->phase;
  op->phase = P_DONE;
  Py_CLEAR(op->waker);
  bool completed = false;
  if (phase == P_PARKED) {
    op_unlink(op);
    completed = op->outcome == O_GRANTED;
  }
  if (!completed) return S_RAISE;
  if (op->kind != K_SEND) {
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
  auto* op = reinterpret_cast<Op*>(self_obj);
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
  auto* op = reinterpret_cast<Op*>(self_obj);
  if (op->inner) {
    PyObject* r = inner_close(&op->inner);
    if (op->phase == P_TRIO_WAIT) trio_interrupted(op);
    op->phase = P_DONE;
    return r;
  }
  settle_interrupted(op, nullptr);
  Py_RETURN_NONE;
}

// _abort(raise_cancel): Trio's abort function for a parked operation. Trio
// reschedules the task with the cancellation; the operation stays in its
// queue until the task runs again (as upstream's waiter entries do): peers
// pass over a receiver, a sender keeps offering its item, and the task sorts
// it out when it resumes.
PyObject* op_trio_abort(PyObject* self_obj, PyObject*) {
  auto* op = reinterpret_cast<Op*>(self_obj);
  op->aborted = 1;
  return Py_NewRef(cfg.abort_succeeded);
}

int op_traverse(Op* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->stream);
  Py_VISIT(self->item);
  Py_VISIT(self->waker);
  Py_VISIT(self->inner);
  return 0;
}

int op_clear(Op* self) {
  op_unlink(self);
  Py_CLEAR(self->stream);
  Py_CLEAR(self->item);
  Py_CLEAR(self->waker);
  Py_CLEAR(self->inner);
  return 0;
}

void op_dealloc(Op* self) {
  PyObject_GC_UnTrack(self);
  op_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_GC_Del(self);
  Py_DECREF(tp);
}

PyMethodDef op_methods[] = {
    {"send", send_method_via_send<op_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(op_throw)), METH_FASTCALL, nullptr},
    {"close", op_close, METH_NOARGS, nullptr},
    {"_abort", op_trio_abort, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot op_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(op_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<op_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(op_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(op_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(op_clear)},
    {Py_tp_methods, op_methods},
    {0, nullptr},
};

PyType_Spec op_spec = {
    "anyio._cpp.MemoryStreamOp",
    sizeof(Op),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    op_slots,
};

PyObject* new_op(Stream* stream, unsigned char kind, PyObject* item) {
  auto* op = PyObject_GC_New(Op, OpType);
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
  op->phase = P_FRESH;
  op->outcome = O_WAITING;
  op->linked = 0;
  op->on_trio = 0;
  op->aborted = 0;
  PyObject_GC_Track(op);
  return reinterpret_cast<PyObject*>(op);
}

// --- State -------------------------------------------------------------------

int state_traverse(State* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->max_obj);
  if (self->buffer) {
    for (PyObject* o : *self->buffer) Py_VISIT(o);
  }
  for (Queue* q : {self->senders, self->receivers}) {
    if (!q) continue;
    for (Op* w = q->head; w; w = w->next) Py_VISIT(reinterpret_cast<PyObject*>(w));
  }
  return 0;
}

int state_clear(State* self) {
  Py_CLEAR(self->max_obj);
  if (self->buffer) {
    std::deque<PyObject*> items;
    items.swap(*self->buffer);
    for (PyObject* o : items) Py_DECREF(o);
  }
  for (Queue* q : {self->senders, self->receivers}) {
    if (!q) continue;
    while (Op* w = q->head) {
      q_remove(*q, w);
      Py_DECREF(w);
    }
  }
  return 0;
}

void state_dealloc(State* self) {
  PyObject_GC_UnTrack(self);
  state_clear(self);
  delete self->buffer;
  delete self->senders;
  delete self->receivers;
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

// MemoryStreamState(max_buffer_size): the caller has validated the limit.
PyObject* state_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  PyObject* max_obj = nullptr;
  static const char* kwlist[] = {"max_buffer_size", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:MemoryStreamState", const_cast<char**>(kwlist),
                                   &max_obj)) {
    return nullptr;
  }
  Py_ssize_t max;
  if (PyLong_Check(max_obj)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(max_obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return nullptr;
    if (overflow < 0 || (overflow == 0 && v < 0))
      return raise(PyExc_ValueError, "max_buffer_size cannot be negative");
    max = (overflow > 0 || v > PY_SSIZE_T_MAX) ? PY_SSIZE_T_MAX : static_cast<Py_ssize_t>(v);
  } else if (PyFloat_Check(max_obj) && Py_IS_INFINITY(PyFloat_AS_DOUBLE(max_obj)) &&
             PyFloat_AS_DOUBLE(max_obj) > 0) {
    max = PY_SSIZE_T_MAX;
  } else {
    return raise(PyExc_ValueError, "max_buffer_size must be either an integer or math.inf");
  }
  auto* self = reinterpret_cast<State*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->buffer = new std::deque<PyObject*>();
  self->senders = new Queue();
  self->receivers = new Queue();
  self->max = max;
  self->max_obj = Py_NewRef(max_obj);
  self->open_send = 0;
  self->open_recv = 0;
  return reinterpret_cast<PyObject*>(self);
}

PyObject* state_statistics(State* st) {
  if (!configured()) return nullptr;
  PyObject* args[6];
  args[0] = PyLong_FromSize_t(st->buffer->size());
  args[1] = Py_NewRef(st->max_obj);
  args[2] = PyLong_FromSsize_t(st->open_send);
  args[3] = PyLong_FromSsize_t(st->open_recv);
  args[4] = PyLong_FromSsize_t(st->senders->count);
  args[5] = PyLong_FromSsize_t(st->receivers->count);
  PyObject* r = nullptr;
  if (args[0] && args[2] && args[3] && args[4] && args[5])
    r = PyObject_Vectorcall(cfg.statistics_cls, args, 6, nullptr);
  for (PyObject* a : args) Py_XDECREF(a);
  return r;
}

PyObject* state_statistics_method(PyObject* self, PyObject*) {
  return state_statistics(reinterpret_cast<State*>(self));
}

PyObject* state_repr(PyObject* self_obj) {
  auto* st = reinterpret_cast<State*>(self_obj);
  return PyUnicode_FromFormat(
      "<MemoryStreamState max_buffer_size=%R buffered=%zd open_send=%zd open_receive=%zd>", st->max_obj,
      static_cast<Py_ssize_t>(st->buffer->size()), st->open_send, st->open_recv);
}

PyMethodDef state_methods[] = {
    {"statistics", state_statistics_method, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot state_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(state_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(state_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(state_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(state_clear)},
    {Py_tp_methods, state_methods},
    {Py_tp_repr, reinterpret_cast<void*>(state_repr)},
    {0, nullptr},
};

PyType_Spec state_spec = {
    "anyio._cpp.MemoryStreamState", sizeof(State), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, state_slots,
};

// --- the stream base types -----------------------------------------------------

PyObject* make_stream(PyTypeObject* type, State* st, bool is_send) {
  auto* s = reinterpret_cast<Stream*>(type->tp_alloc(type, 0));
  if (!s) return nullptr;
  Py_INCREF(st);
  s->state = st;
  s->closed = 0;
  s->is_send = is_send ? 1 : 0;
  if (is_send)
    st->open_send++;
  else
    st->open_recv++;
  return reinterpret_cast<PyObject*>(s);
}

PyObject* stream_new_impl(PyTypeObject* type, PyObject* args, PyObject* kwargs, bool is_send) {
  PyObject* st = nullptr;
  static const char* kwlist[] = {"_state", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!", const_cast<char**>(kwlist), StateType, &st))
    return nullptr;
  return make_stream(type, reinterpret_cast<State*>(st), is_send);
}

PyObject* send_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return stream_new_impl(type, args, kwargs, true);
}
PyObject* recv_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return stream_new_impl(type, args, kwargs, false);
}

int stream_traverse(Stream* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->state);
  return 0;
}

int stream_clear(Stream* self) {
  Py_CLEAR(self->state);
  return 0;
}

// Unclosed streams are reported as upstream does; they are not closed here
// (a collected clone does not end the stream for the others).
void stream_finalize(PyObject* self_obj) {
  auto* s = reinterpret_cast<Stream*>(self_obj);
  if (s->closed || !s->state) return;
  PyObject *t, *v, *tb;
  PyErr_Fetch(&t, &v, &tb);
  const char* name = Py_TYPE(self_obj)->tp_name;
  if (const char* dot = std::strrchr(name, '.')) name = dot + 1;
  char msg[256];
  std::snprintf(msg, sizeof msg, "Unclosed <%s at %jx>", name,
                static_cast<uintmax_t>(reinterpret_cast<uintptr_t>(self_obj)));
  if (PyErr_ResourceWarning(self_obj, 1, "%s", msg) < 0) PyErr_WriteUnraisable(self_obj);
  PyErr_Restore(t, v, tb);
}

void stream_dealloc(Stream* self) {
  PyTypeObject* tp = Py_TYPE(self);
  // Python subclasses run the finalizer in their own dealloc before ours.
  if ((tp == SendBaseType || tp == RecvBaseType) &&
      PyObject_CallFinalizerFromDealloc(reinterpret_cast<PyObject*>(self)) < 0) {
    return;
  }
  PyObject_GC_UnTrack(self);
  stream_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* stream_send_nowait(PyObject* self, PyObject* item) {
  int r = send_try(reinterpret_cast<Stream*>(self), item);
  if (r == 1) Py_RETURN_NONE;
  if (r == 0) PyErr_SetNone(cfg.WouldBlock);
  return nullptr;
}

PyObject* stream_receive_nowait(PyObject* self, PyObject*) {
  PyObject* out = nullptr;
  int r = recv_try(reinterpret_cast<Stream*>(self), &out);
  if (r == 1) return out;
  if (r == 0) PyErr_SetNone(cfg.WouldBlock);
  return nullptr;
}

PyObject* stream_send(PyObject* self, PyObject* item) {
  return new_op(reinterpret_cast<Stream*>(self), K_SEND, item);
}

PyObject* stream_receive(PyObject* self, PyObject*) {
  return new_op(reinterpret_cast<Stream*>(self), K_RECV, nullptr);
}

PyObject* stream_anext(PyObject* self) { return new_op(reinterpret_cast<Stream*>(self), K_ANEXT, nullptr); }

PyObject* stream_aiter(PyObject* self) { return Py_NewRef(self); }

PyObject* stream_clone(PyObject* self_obj, PyObject*) {
  auto* s = reinterpret_cast<Stream*>(self_obj);
  if (!configured()) return nullptr;
  if (s->closed) {
    PyErr_SetNone(cfg.ClosedResourceError);
    return nullptr;
  }
  return make_stream(Py_TYPE(self_obj), s->state, s->is_send);
}

PyObject* stream_close_method(PyObject* self, PyObject*) {
  if (stream_close(reinterpret_cast<Stream*>(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* stream_statistics(PyObject* self, PyObject*) {
  return state_statistics(reinterpret_cast<Stream*>(self)->state);
}

PyObject* stream_get_closed(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Stream*>(self)->closed);
}

PyObject* stream_get_state(PyObject* self, void*) {
  return Py_NewRef(reinterpret_cast<PyObject*>(reinterpret_cast<Stream*>(self)->state));
}

PyGetSetDef stream_getset[] = {
    {"_closed", stream_get_closed, nullptr, nullptr, nullptr},
    {"_state", stream_get_state, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef send_methods[] = {
    {"send", stream_send, METH_O,
     "send(item)\n--\n\nSend an item, waiting while the buffer is full (a checkpoint)."},
    {"send_nowait", stream_send_nowait, METH_O,
     "send_nowait(item)\n--\n\nSend an item at once or raise WouldBlock."},
    {"clone", stream_clone, METH_NOARGS, "clone()\n--\n\nA new send handle to the same stream."},
    {"close", stream_close_method, METH_NOARGS, "close()\n--\n\nClose this handle."},
    {"statistics", stream_statistics, METH_NOARGS, "statistics()\n--\n\nThe stream's current statistics."},
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef recv_methods[] = {
    {"receive", stream_receive, METH_NOARGS,
     "receive()\n--\n\nReceive the next item, waiting if there is none (a checkpoint)."},
    {"receive_nowait", stream_receive_nowait, METH_NOARGS,
     "receive_nowait()\n--\n\nReceive the next item at once or raise WouldBlock."},
    {"clone", stream_clone, METH_NOARGS, "clone()\n--\n\nA new receive handle to the same stream."},
    {"close", stream_close_method, METH_NOARGS, "close()\n--\n\nClose this handle."},
    {"statistics", stream_statistics, METH_NOARGS, "statistics()\n--\n\nThe stream's current statistics."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot send_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(send_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(stream_dealloc)},
    {Py_tp_finalize, reinterpret_cast<void*>(stream_finalize)},
    {Py_tp_traverse, reinterpret_cast<void*>(stream_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(stream_clear)},
    {Py_tp_methods, send_methods},
    {Py_tp_getset, stream_getset},
    {0, nullptr},
};

PyType_Slot recv_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(recv_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(stream_dealloc)},
    {Py_tp_finalize, reinterpret_cast<void*>(stream_finalize)},
    {Py_tp_traverse, reinterpret_cast<void*>(stream_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(stream_clear)},
    {Py_tp_methods, recv_methods},
    {Py_tp_getset, stream_getset},
    {Py_am_aiter, reinterpret_cast<void*>(stream_aiter)},
    {Py_am_anext, reinterpret_cast<void*>(stream_anext)},
    {0, nullptr},
};

constexpr unsigned long kStreamFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;

PyType_Spec send_spec = {"anyio._cpp.MemorySendStreamBase", sizeof(Stream), 0, kStreamFlags, send_slots};
PyType_Spec recv_spec = {"anyio._cpp.MemoryReceiveStreamBase", sizeof(Stream), 0, kStreamFlags, recv_slots};

// --- configuration ---------------------------------------------------------

PyObject* fn_configure(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 6) return raise(PyExc_TypeError, "_memory_configure expects 6 arguments");
  PyObject** slots[] = {&cfg.WouldBlock,          &cfg.EndOfStream,    &cfg.ClosedResourceError,
                        &cfg.BrokenResourceError, &cfg.statistics_cls, &cfg.trio_setup};
  for (Py_ssize_t i = 0; i < 6; ++i) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
  if (!cfg.s_uncancel) cfg.s_uncancel = PyUnicode_InternFromString("uncancel");
  if (!cfg.s_uncancel) return nullptr;
  if (!cfg.s_abort) cfg.s_abort = PyUnicode_InternFromString("_abort");
  if (!cfg.s_abort) return nullptr;
  Py_RETURN_NONE;
}

PyObject* fn_configure_trio(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 7) return raise(PyExc_TypeError, "_memory_configure_trio expects 7 arguments");
  PyObject** slots[] = {
      &cfg.trio_reschedule,   &cfg.abort_succeeded, &cfg.trio_checkpoint, &cfg.trio_checkpoint_if_cancelled,
      &cfg.trio_current_task, &cfg.trio_wait,       &cfg.trio_cancelled};
  for (Py_ssize_t i = 0; i < 7; ++i) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
  Py_RETURN_NONE;
}

PyMethodDef module_fns[] = {
    {"_memory_configure", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_configure)),
     METH_FASTCALL,
     "_memory_configure(WouldBlock, EndOfStream, ClosedResourceError, BrokenResourceError, statistics_cls, "
     "trio_setup)\n--\n\nCalled once by anyio.streams.memory."},
    {"_memory_configure_trio", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_configure_trio)),
     METH_FASTCALL,
     "_memory_configure_trio(reschedule, abort_succeeded, checkpoint, checkpoint_if_cancelled, "
     "current_task, wait_task_rescheduled, Cancelled)\n--\n\nCalled on first use on Trio."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

// introspection (task tree): what a MemoryStreamOp waits on, read at snapshot time only.
PyObject* memory_op_waits_on(PyObject* obj) {
  if (!OpType || Py_TYPE(obj) != OpType) Py_RETURN_NONE;
  auto* op = reinterpret_cast<Op*>(obj);
  if (!op->stream || op->phase == P_DONE) Py_RETURN_NONE;
  const char* kind = op->kind == K_SEND ? "send" : "receive";
  PyObject* parked = op->linked ? Py_True : Py_False;
  return Py_BuildValue("(sOO)", kind, reinterpret_cast<PyObject*>(op->stream), parked);
}

int register_memory(PyObject* module) {
  if (!(StateType = add_type(module, &state_spec))) return -1;
  if (!(OpType = add_type(module, &op_spec))) return -1;
  if (!(SendBaseType = add_type(module, &send_spec))) return -1;
  if (!(RecvBaseType = add_type(module, &recv_spec))) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio
