// Shared pieces of the synchronization primitives (Event and the token pools
// behind Lock, Semaphore and CapacityLimiter): the FIFO of parked waiters,
// waking a waiter on either backend, and finding out which backend and which
// task is running.
//
// A waiter node lives inside the awaitable that parked it (no allocation per
// wait). The queue links nodes raw: the awaitable holds a strong reference to
// its primitive and unlinks itself before it dies, so a linked node always
// outlives its place in the queue.
#pragma once

#include "cancel/core.hpp"
#include "sync/parking.hpp"

namespace anyio::sync {

struct Waiter {
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  PyObject* waker = nullptr;  // asyncio: the loop future; trio: the parked trio task (strong)
  PyObject* who = nullptr;    // the owner/borrower identity to grant to (strong), pools only
  bool trio = false;
  bool linked = false;
  bool granted = false;  // the token/lock/notification was handed to this waiter
};

struct WaitQueue {
  Waiter* head = nullptr;
  Waiter* tail = nullptr;
  Py_ssize_t size = 0;

  void push(Waiter* w) {
    w->prev = tail;
    w->next = nullptr;
    if (tail)
      tail->next = w;
    else
      head = w;
    tail = w;
    w->linked = true;
    ++size;
  }
  void unlink(Waiter* w) {
    if (!w->linked) return;
    if (w->prev)
      w->prev->next = w->next;
    else
      head = w->next;
    if (w->next)
      w->next->prev = w->prev;
    else
      tail = w->prev;
    w->prev = w->next = nullptr;
    w->linked = false;
    --size;
  }
};

enum Backend : int { BACKEND_ERROR = -1, BACKEND_NONE = 0, BACKEND_ASYNCIO = 1, BACKEND_TRIO = 2 };

// Which backend runs in this thread. Never sets an error for BACKEND_NONE.
Backend detect_backend();
// Raises NoEventLoopError; returns nullptr.
PyObject* no_event_loop();
// The current task (asyncio.Task or trio Task) as a new reference; raises
// NoEventLoopError outside any loop.
PyObject* current_task_obj(Backend* backend_out = nullptr);

// Pops the first waiter that can still be woken. Asyncio waiters whose future
// is already done (cancelled, its task about to see CancelledError) are
// dropped on the way. Returns nullptr with no error if none, nullptr with an
// error set on failure.
Waiter* pop_live(WaitQueue& q);
// Marks the waiter granted and wakes its task. The waiter is already unlinked.
int wake(Waiter* w);
// Drops the strong references a waiter holds.
inline void waiter_clear(Waiter* w) {
  Py_CLEAR(w->waker);
  Py_CLEAR(w->who);
}

// The Trio helpers (anyio._sync_trio), imported on first use; borrowed.
enum TrioFn : int { TRIO_EVENT_WAIT = 0, TRIO_ACQUIRE = 1 };
PyObject* trio_glue(TrioFn which);
// trio.lowlevel.Abort.SUCCEEDED (new reference); Trio must be loaded.
PyObject* abort_succeeded();

// Raises anyio.WouldBlock.
PyObject* would_block();

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
WaitQueue* queue_of(PyObject* prim);
bool pool_fast(PyObject* pool);
// Semaphores hand out anonymous tokens: no need to know who acquires.
bool pool_needs_who(PyObject* pool);
bool event_is_set(PyObject* ev);
WaitQueue* event_queue(PyObject* ev);

}  // namespace anyio::sync
