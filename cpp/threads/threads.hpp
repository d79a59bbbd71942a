// The worker-thread pool behind anyio.to_thread / anyio.from_thread.
//
// One Pool per event loop (asyncio) or per Trio run. Jobs are posted to a
// Boost.Asio io_context; worker threads wait in io_context::run_one_for with
// the GIL released and take the GIL only to run the job's callable. Finished
// jobs and requests coming from worker threads (from_thread.run and friends)
// go into one completion queue that the event loop drains through a single
// wake-up per batch: loop.call_soon_threadsafe on asyncio, the Trio token's
// run_sync_soon on Trio, so the pool holds no file descriptor of its own.
// Nothing on the way allocates a Python Future.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "common/py.hpp"

namespace anyio::threads {

enum JobStatus : unsigned char { JOB_PENDING = 0, JOB_RUNNING = 1, JOB_DONE = 2, JOB_ABANDONED = 3 };
enum ItemKind : unsigned char { ITEM_DONE = 0, ITEM_REQUEST = 1 };
enum RequestKind : unsigned char { REQ_SYNC = 0, REQ_ASYNC = 1 };

struct Item {
  ItemKind kind;
  PyObject* obj;  // strong: a Call (ITEM_DONE) or a Request (ITEM_REQUEST)
};

using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

struct Pool {
  PyObject_HEAD
  // --- job side (threads) -------------------------------------------------
  boost::asio::io_context* ioc;
  std::optional<WorkGuard>* guard;
  std::mutex* mu;                    // guards the counters below
  size_t idle;                       // workers waiting for a job
  size_t queued;                     // jobs posted, not yet picked up
  size_t threads;                    // live worker threads
  double idle_timeout;               // seconds an idle worker waits before exiting
  bool closing;                      // no new workers; idle ones exit
  std::condition_variable* exit_cv;  // signalled (under mu) when a worker exits
  PyObject* exited;                  // list: Thread objects of workers that exited (GIL)
  // --- completion side ----------------------------------------------------
  std::mutex* cmu;  // guards `completed` and `signaled`
  std::vector<Item>* completed;
  bool signaled;  // a wake-up is in flight: the loop will drain before sleeping
  // --- loop side (GIL) ----------------------------------------------------
  bool is_trio;
  bool loop_gone;          // the loop has ended (or closed): drop late completions
  Py_ssize_t outstanding;  // submitted calls not yet finished and processed
  PyObject* loop;          // asyncio loop (borrowed; cleared by the weakref callback)
  PyObject* loop_ref;      // weakref to the loop
  PyObject* trio_token;    // TrioToken (strong)
  PyObject* drain_cb;      // bound method the wake-up calls
  PyObject* wake_ctx;      // asyncio: the empty context drain_cb runs in
  PyObject* default_limiter;
  PyObject* weakreflist;
};

struct Request {
  PyObject_HEAD
  RequestKind kind;
  bool done;
  PyObject* func;
  PyObject* args;
  PyObject* context;
  PyObject* result;
  PyObject* exc;
  PyObject* call;  // the Call whose worker made the request, or null (strong)
  std::mutex* mu;
  std::condition_variable* cv;
};

extern PyTypeObject* PoolType;
extern PyTypeObject* RequestType;
extern PyTypeObject* CallType;

// Objects the module looks up at registration and at first use.
struct ThreadGlobals {
  PyObject* WouldBlock = nullptr;
  PyObject* NoEventLoopError = nullptr;
  PyObject* RunFinishedError = nullptr;
  PyObject* hooks = nullptr;  // dict set by anyio._threads
  PyObject* s_is_closed = nullptr;
  PyObject* s_run_sync_soon = nullptr;
  PyObject* s_acquire_nowait = nullptr;
  PyObject* s_acquire = nullptr;
  PyObject* s_release = nullptr;
  PyObject* s_context = nullptr;
  PyObject* s_call_soon_threadsafe = nullptr;
  PyObject* kw_context = nullptr;  // ("context",): kwnames for call_soon_threadsafe
};
extern ThreadGlobals TG;

// Pool operations (GIL held unless stated).
Pool* pool_for_loop(PyObject* loop);       // borrowed, created on demand
int pool_submit(Pool* p, PyObject* call);  // takes a new reference to call
// Queues a completion or request (steals obj). True if the caller must then
// wake the loop with pool_wakeup (the first item after a drain).
bool pool_push(Pool* p, ItemKind kind, PyObject* obj);
// Schedules a drain on the loop thread through the loop's own thread-safe
// wake-up (call_soon_threadsafe / TrioToken.run_sync_soon). GIL held. If the
// loop is closed or the run is over, marks it gone and drops the queue as
// a gone loop does (requests fail with RunFinishedError).
void pool_wakeup(Pool* p);
// Closes the pool: idle workers leave. `wait`: wait briefly for them and join
// their threads (not from a weakref callback or a finalizer).
int pool_close(Pool* p, bool wait = true);
PyObject* hook(const char* name);     // borrowed, or null with an error set
double worker_spin_seconds();         // how long an idle worker polls for a job before sleeping
double reply_spin_seconds();          // how long a worker waiting for the loop's answer polls
bool pool_sole_busy_worker(Pool* p);  // no other worker is running a job (GIL not needed)

// Requests.
PyObject* request_new(RequestKind kind, PyObject* func, PyObject* args, PyObject* context, PyObject* call);
void request_finish(Request* r, PyObject* result, PyObject* exc);  // borrows both
void request_run_sync(Request* r);
// Releases the GIL while waiting. With a pool, gives up with RunFinishedError
// once the pool's event loop has finished (nothing would ever answer).
// `wake`: the pool's loop still has to be woken (done first, with the GIL).
PyObject* request_wait(Request* r, Pool* pool = nullptr, bool wake = false);
bool pool_loop_finished(Pool* p);  // GIL held
PyObject* run_finished_error();

// Call hooks used by the pool.
bool call_run_job(Pool* p, PyObject* call);  // worker thread, GIL held; result of pool_push
void call_resolve(PyObject* call);           // loop thread: the job is done, wake the waiter
// 1 if the caller's side takes the async request (its host task on Trio, a
// task below its cancel scope on asyncio), 0 if it needs a task of its own.
int call_host_request(PyObject* call, PyObject* request);

// Exceptions as single objects (3.10 .. 3.13).
PyObject* fetch_exception();
void restore_exception(PyObject* exc);  // steals
// Raises an outcome in the caller (steals): chains it to the exception the
// caller is handling, as `raise exc` would.
void raise_exception(PyObject* exc);

// The worker thread's current call (null outside worker threads).
PyObject* current_worker_call();

int register_threads_pool(PyObject* module);
int register_threads_call(PyObject* module);

// introspection (task tree): what a ThreadCall's waiter waits on, for a
// snapshot only: ("thread", func or None, status: str, limiter or None,
// acquiring_token: bool, running_for: float | None).
PyObject* call_waits_on(PyObject* obj);

}  // namespace anyio::threads
