// Memory object streams, shared between the files of cpp/memory/:
//  - state.cpp: MemoryStreamState (the buffer, the open-handle counts, the
//    FIFO queues of parked senders and receivers) and the transfers on it;
//  - op.cpp / op_trio.cpp: MemoryStreamOp, the awaitable every send, receive
//    and __anext__ returns, on asyncio and on Trio;
//  - streams.cpp: the two handle base types (MemorySendStreamBase,
//    MemoryReceiveStreamBase) whose methods are CPython slots;
//  - setup.cpp: statistics() and the registration of the types.
//
// One awaitable (MemoryStreamOp) is also the waiter node: when an operation
// cannot complete at once it links itself into the state's queue and parks,
// so parking costs one future and no other allocation. The state owns a
// reference to every linked op. Whoever completes a parked op (a peer's
// send/receive, or a close) first unlinks it, records the outcome in it (the
// item, or which error), and only then wakes its task; a woken task reads its
// outcome from the op. An item therefore always has exactly one owner: the
// buffer, a sender's op or a receiver's op, never two and never none.
#pragma once

#include <deque>

#include "cancel/core.hpp"
#include "common/runtime.hpp"
#include "common/wait_queue.hpp"
#include "sync/parking.hpp"

namespace anyio::memory {

using sync::OpPhase;

// Raises anyio's exception class `which`, e.g. &AnyioExceptions::EndOfStream.
inline void raise_anyio(PyObject* AnyioExceptions::* which) {
  if (const AnyioExceptions* exc = anyio_exceptions()) PyErr_SetNone(exc->*which);
}

struct MemoryStreamState;
struct MemoryStreamOp;

// The layout of both handle base types, MemorySendStreamBase and
// MemoryReceiveStreamBase (is_send tells which).
struct MemoryStream {
  PyObject_HEAD
  MemoryStreamState* state;  // strong
  unsigned char closed;
  unsigned char is_send;
};

// A FIFO of parked ops, linked through the ops themselves.
using OpQueue = WaitQueue<MemoryStreamOp>;

struct MemoryStreamState {
  PyObject_HEAD
  std::deque<PyObject*>* buffer;  // strong references, oldest first
  Py_ssize_t max;                 // the limit, math.inf and huge ints clamped
  PyObject* max_obj;              // the limit as given, for statistics()
  Py_ssize_t open_send;
  Py_ssize_t open_recv;
  OpQueue senders;
  OpQueue receivers;
};

enum class OpKind : unsigned char { Send, Receive, Anext };
// What a parked op was told by whoever unlinked it.
enum class Outcome : unsigned char {
  Waiting,  // still linked (or never parked)
  Granted,  // the item was delivered (send) or handed over (receive)
  End,      // every send handle closed: EndOfStream
  Closed,   // its own handle was closed: ClosedResourceError
  Broken,   // every receive handle closed: BrokenResourceError
};

struct MemoryStreamOp {
  PyObject_HEAD
  MemoryStreamOp* prev;
  MemoryStreamOp* next;
  MemoryStream* stream;  // strong
  PyObject* item;        // send: the item until delivered; receive: the item received
  PyObject* waker;       // asyncio: the future parked on; Trio: the task
  PyObject* inner;       // Trio: the trio.lowlevel coroutine we forward to
  unsigned long thread;  // Trio: the thread of the run the task is parked in
  OpKind kind;
  OpPhase phase;
  Outcome outcome;
  bool linked;
  bool on_trio;
  bool aborted;      // Trio: the wait was aborted, the task is rescheduled
  double parked_at;  // introspection (task tree): introspect_clock() when queued; read only while linked
};

extern PyTypeObject* MemoryStreamStateType;

// --- state.cpp: queues and transfers ------------------------------------------
// The operations return 1 when done, 0 when they would block, -1 with an
// exception set.

OpQueue& queue_of(MemoryStreamState* st, MemoryStreamOp* op);
// Links `op` at the back of `q`; the queue takes a reference.
void q_push(OpQueue& q, MemoryStreamOp* op);
// Unlinks `op`; the caller inherits the reference the queue held.
void q_remove(OpQueue& q, MemoryStreamOp* op);
// A receiver that was handed an item but is not going to return it passes it
// on (steals `item`).
void give_back(MemoryStreamState* st, PyObject* item);
int send_try(MemoryStream* s, PyObject* item);
int recv_try(MemoryStream* s, PyObject** out);
// Closes one handle. -1 (nothing changed) if a waiter to wake is a Trio task
// and this is not its thread.
int stream_close(MemoryStream* s);
int register_state_type(PyObject* module);

// --- op.cpp: the awaitable ----------------------------------------------------

PyObject* new_op(MemoryStream* stream, OpKind kind, PyObject* item);
// Takes a linked op out of its queue (dropping the queue's reference).
void op_unlink(MemoryStreamOp* op);
// Raises the error recorded as the outcome of a parked operation.
void raise_outcome(MemoryStreamOp* op);
// A parked op whose task was woken: returns its value, or raises the error
// its outcome records. *out is null on entry.
PySendResult finish_woken(MemoryStreamOp* op, PyObject** out);
// The value an operation that completed returns (new reference).
PyObject* take_value(MemoryStreamOp* op);
// Tries the operation now (see send_try/recv_try).
int run_try(MemoryStreamOp* op);
// Whether trying now would complete (or raise) rather than park.
bool would_complete(MemoryStreamOp* op);
int register_op_type(PyObject* module);

// --- op_trio.cpp: the op on Trio ----------------------------------------------

PySendResult trio_start(MemoryStreamOp* op, PyObject* arg, PyObject** out);
PySendResult trio_step(MemoryStreamOp* op, PyObject* arg, PyObject** out);
// What follows the inner coroutine's step `r` (send or throw).
PySendResult trio_continue(MemoryStreamOp* op, PySendResult r, PyObject** out);
// A parked Trio op whose wait was interrupted (closed): leave the queue and
// hand back an item that was already ours.
void trio_interrupted(MemoryStreamOp* op);
// _abort(raise_cancel): Trio's abort function for a parked op.
PyObject* op_trio_abort(PyObject* self, PyObject* raise_cancel);

// --- streams.cpp: the handle types --------------------------------------------

int register_stream_types(PyObject* module);

// --- setup.cpp ------------------------------------------------------------------

// statistics() of the stream: the memory_statistics hook
// (MemoryObjectStreamStatistics) called with the counts.
PyObject* state_statistics(MemoryStreamState* st);

// introspection (task tree): what a MemoryStreamOp waits on, for a snapshot
// only: ("send" | "receive", stream, parked: bool, parked_for: float | None).
PyObject* op_waits_on(PyObject* obj);

}  // namespace anyio::memory
