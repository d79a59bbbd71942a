// Shared pieces of the synchronization primitives (Event and the token pools
// behind Lock, Semaphore and CapacityLimiter): the FIFO of parked waiters,
// waking a waiter on either backend, and finding out which backend and which
// task is running.
//
// A waiter node lives inside the SyncOp that parked it, linked into its
// primitive's WaitQueue<Waiter> (common/wait_queue.hpp).
#pragma once

#include "cancel/core.hpp"
#include "common/runtime.hpp"
#include "common/wait_queue.hpp"
#include "sync/parking.hpp"

namespace anyio::sync {

struct Waiter {
  Waiter* prev = nullptr;  // WaitQueue links
  Waiter* next = nullptr;
  PyObject* waker = nullptr;  // asyncio: the loop future; trio: the parked trio task (strong)
  PyObject* who = nullptr;    // the owner/borrower identity to grant to (strong), pools only
  bool trio = false;
  bool linked = false;
  bool granted = false;  // the token/lock/notification was handed to this waiter
  double parked_at;      // introspection (task tree): introspect_clock() when queued; read only while linked
};

// The current task (asyncio.Task or trio Task) as a new reference; raises
// NoEventLoopError outside any loop. `backend_out` tells which backend runs.
PyObject* current_task_obj(Backend* backend_out = nullptr);

// Pops the first waiter that can still be woken. Asyncio waiters whose future
// is already done (cancelled, its task about to see CancelledError) are
// dropped on the way. Returns nullptr with no error if none, nullptr with an
// error set on failure.
Waiter* pop_live(WaitQueue<Waiter>& q);
// Marks the waiter granted and wakes its task. The waiter is already unlinked.
int wake(Waiter* w);
// Drops the strong references a waiter holds.
inline void waiter_clear(Waiter* w) {
  Py_CLEAR(w->waker);
  Py_CLEAR(w->who);
}

// A stateless awaitable that completes at once (for __aexit__).
PyObject* done_awaitable();

int register_events(PyObject* module);
int register_pools(PyObject* module);
int register_op(PyObject* module);

// SyncOp, the awaitable behind Event.wait() and the token pool acquires.
enum class SyncOpKind : unsigned char { EventWait, Acquire };
PyObject* make_sync_op(PyObject* prim, SyncOpKind kind, PyObject* who);

// Token pool (Lock, Semaphore, CapacityLimiter) hooks used by the awaitable.
bool is_pool(PyObject* o);
bool is_event(PyObject* o);
// 1 acquired, 0 would block, -1 error.
int pool_try_acquire(PyObject* pool, PyObject* who);
// Gives back what `who` holds (hands it to the next waiter). `check` raises
// on a release by a non-holder; without it the call cannot fail that way.
int pool_release(PyObject* pool, PyObject* who, bool check);
// The queue of waiters of a token pool or an Event.
WaitQueue<Waiter>* queue_of(PyObject* prim);
bool pool_fast(PyObject* pool);
// Semaphores hand out anonymous tokens: no need to know who acquires.
bool pool_needs_who(PyObject* pool);
bool event_is_set(PyObject* ev);
WaitQueue<Waiter>* event_queue(PyObject* ev);

// introspection (task tree): what a SyncOp waits on, for a snapshot only:
// ("event" | "acquire", primitive, parked: bool, parked_for: float | None).
PyObject* op_waits_on(PyObject* obj);

}  // namespace anyio::sync
