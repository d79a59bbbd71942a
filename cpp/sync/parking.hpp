// What the two blocking-operation awaitables have in common: SyncOp (behind
// Event.wait() and the Lock/Semaphore/CapacityLimiter acquires) and
// MemoryStreamOp (behind memory stream send/receive). Each is one C object
// per await that may park its task in a FIFO of waiters and is woken by a
// peer: the phases it goes through, the future an asyncio task parks on and
// the way a parked task is woken are the same for both.
#pragma once

#include "common/py.hpp"

namespace anyio::sync {

// Where a blocking operation's awaitable stands between two steps of its task.
enum class OpPhase : unsigned char {
  Fresh,           // not awaited yet
  Checkpoint,      // asyncio: yielded once, cancellable; the operation is tried
                   // (or was already settled) when the task resumes
  ShieldedYield,   // asyncio: acquired, yielding once with cancellation shielded
  Parked,          // asyncio: linked in a queue, waiting on a loop future
  TrioCheckpoint,  // Trio: forwarding to a trio.lowlevel checkpoint coroutine
  TrioWait,        // Trio: forwarding to the coroutine the task is parked in
  Done,
};

// A new future of `loop` for a task to park on, flagged the way an asyncio
// Task expects a future it is handed to be (as `await future` does).
inline PyObject* new_parking_future(PyObject* loop) {
  PyObject* fut = call_method0(loop, G.s_create_future);
  if (fut && PyObject_SetAttr(fut, G.s_asyncio_future_blocking, Py_True) < 0) Py_CLEAR(fut);
  return fut;
}

// Wakes a parked task: `waker` is the loop future it waits on (asyncio) or
// the Trio task itself (`trio`), which Trio reschedules. -1 with an error set.
int wake_parked(PyObject* waker, bool trio);

}  // namespace anyio::sync
