// ThreadCall: one to_thread.run_sync call. It is at once
//  - the job a worker thread runs (func, args, the caller's context copy),
//  - on asyncio, the awaitable the caller's task awaits AND the future-like
//    object the task parks on (asyncio's Task accepts any object with the
//    Future protocol: _asyncio_future_blocking, get_loop, add_done_callback,
//    cancel, result), so no asyncio.Future is made per call,
//  - on Trio, the state the Python side (anyio._threads_trio) parks on with
//    wait_task_rescheduled.
// While the caller waits (not abandon_on_cancel) it is shielded: the core sees
// `shielded_yield` and neither delivers cancellation nor cancels us. A worker
// that calls from_thread.run hands the coroutine to the waiting task, which
// runs it unshielded, so the host's cancel scopes apply to it.
//
// Internal to cpp/threads: call.cpp (the awaitable), call_future.cpp (the
// Future protocol and waking the waiter), call_type.cpp (the Python type and
// the Trio driver's methods), call_worker.cpp (the worker thread's side).
#pragma once

#include "cancel/core.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

// Where the awaitable is (asyncio, or handing over to the Trio driver).
enum class AwaitState : unsigned char {
  Init,      // not started
  Acquire,   // waiting for a limiter token (`inner` is the acquire)
  Wait,      // submitted; the task is parked on the call itself
  Finished,  // outcome handed over (or failed); cannot be awaited again
  Trio,      // forwarding to the Trio driver coroutine in `inner`
};

struct ThreadCall {
  PyObject_HEAD
  PyObject* func;
  PyObject* args;
  PyObject* ctx;
  PyObject* result;
  PyObject* exc;
  WorkerPool* pool;    // strong once submitted
  PyObject* limiter;   // strong or null: the pool's default limiter
  PyObject* borrower;  // strong while a token is held
  PyObject* loop;      // strong (asyncio)
  PyObject* cb;        // first done callback and its context (asyncio)
  PyObject* cb_ctx;
  PyObject* more_cbs;  // list of (callback, context) beyond the first
  PyObject* cancel_msg;
  PyObject* host_owner;  // owner of the host TaskState (not abandon_on_cancel)
  TaskState* host;
  PyObject* inner;      // what we forward to: limiter acquire or the Trio driver
  CancelScope* scope;   // asyncio: the caller's innermost scope (strong); from_thread.run tasks hang below it
  PyObject* pending;    // Trio: a request waiting for the host task
  PyObject* req_tasks;  // asyncio, abandon_on_cancel: tasks running its from_thread.run requests
  PyObject* waiter;     // Trio: the task to reschedule
  PyObject* token;      // the EventLoopToken made for the job, on demand
  PyObject* weakreflist;
  double started_at;  // introspection (task tree): introspect_clock() when a worker started it
  JobStatus status;   // written by the worker thread, under the GIL
  AwaitState astate;
  bool abandon;
  bool blocking;
  bool resolved;   // the waiter was woken (result, request or cancel)
  bool cancelled;  // abandoned by cancellation
  bool shielding;  // we set host->shielded_yield
};

// Every reference a ThreadCall owns but host_owner, which drop_host() lets go
// of with the host.
using ThreadCallRefs =
    OwnedRefs<&ThreadCall::func, &ThreadCall::args, &ThreadCall::ctx, &ThreadCall::result, &ThreadCall::exc,
              &ThreadCall::pool, &ThreadCall::limiter, &ThreadCall::borrower, &ThreadCall::loop,
              &ThreadCall::cb, &ThreadCall::cb_ctx, &ThreadCall::more_cbs, &ThreadCall::cancel_msg,
              &ThreadCall::inner, &ThreadCall::scope, &ThreadCall::req_tasks, &ThreadCall::pending,
              &ThreadCall::waiter, &ThreadCall::token>;

// thread_call() starts from a zeroed object (new_awaitable).
static_assert(static_cast<int>(JobStatus::Pending) == 0 && static_cast<int>(AwaitState::Init) == 0);

inline ThreadCall* as_call(PyObject* o) { return reinterpret_cast<ThreadCall*>(o); }

// While the task waits for a shielded call, the core neither delivers
// cancellation to it nor cancels it.
inline void set_shield(ThreadCall* c, bool on) {
  if (!c->host) return;
  if (on != c->shielding) {
    c->host->shielded_yield = on;
    c->shielding = on;
  }
}

inline void drop_host(ThreadCall* c) {
  set_shield(c, false);
  c->host = nullptr;
  Py_CLEAR(c->host_owner);
}

// Marks the job abandoned: a worker that has not started it skips it, one that
// is running it drops the outcome.
inline void abandon_job(ThreadCall* c) { c->status = JobStatus::Abandoned; }

// Gives the limiter token back, if one is held.
int release_token(ThreadCall* c);
// The same while an exception is being raised, keeping it.
void release_token_keep_error(ThreadCall* c);
// Sets the CancelledError of a call abandoned by cancellation; returns null.
PyObject* raise_cancelled(ThreadCall* c);

// Wakes whoever waits on this call. `direct`: we are in the loop's own
// wake-up callback with no task running, so the first callback (the waiting
// task's wakeup) runs right here instead of one loop iteration later.
int fire(ThreadCall* c, bool direct);
// loop.call_soon(cb, call, context=ctx)
int schedule_callback(ThreadCall* c, PyObject* cb, PyObject* ctx);

// The awaitable (call.cpp).
PySendResult call_send(PyObject* self, PyObject* arg, PyObject** out);
PyObject* call_throw(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* call_close(PyObject* self, PyObject*);

// The Future protocol (call_future.cpp).
PyObject* fut_get_blocking(PyObject* self, void*);
int fut_set_blocking(PyObject* self, PyObject* v, void*);
PyObject* fut_get_loop(PyObject* self, PyObject*);
PyObject* fut_add_done_callback(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* fut_remove_done_callback(PyObject* self, PyObject* fn);
PyObject* fut_cancel(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
PyObject* fut_done(PyObject* self, PyObject*);
PyObject* fut_cancelled(PyObject* self, PyObject*);
PyObject* fut_result(PyObject* self, PyObject*);
PyObject* fut_exception(PyObject* self, PyObject*);

// The worker thread's side (call_worker.cpp): its module functions.
int register_call_worker(PyObject* module);

}  // namespace anyio::threads
