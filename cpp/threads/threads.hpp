// The worker-thread pool behind anyio.to_thread / anyio.from_thread.
//
// One WorkerPool per event loop (asyncio) or per Trio run. Jobs are posted to
// a Boost.Asio io_context; worker threads wait in io_context::run_one_for
// with the GIL released and take the GIL only to run the job's callable.
// Finished jobs and requests coming from worker threads (from_thread.run and
// friends) go into one completion queue that the event loop drains through a
// single wake-up per batch: loop.call_soon_threadsafe on asyncio, the Trio
// token's run_sync_soon on Trio, so the pool holds no file descriptor of its
// own. Nothing on the way allocates a Python Future.
//
// Files (each C++ type is named as its Python type):
//   pool.cpp               the loop side of a WorkerPool: registry, submit, completion queue, wake-up, close
//   workers.cpp            the worker threads themselves
//   pool_type.cpp          the WorkerPool Python type and the pool's module functions
//   call.cpp               ThreadCall, the to_thread.run_sync awaitable (thread_call.hpp)
//   call_future.cpp        ThreadCall as the future an asyncio task parks on
//   call_type.cpp          ThreadCall's Python type and the Trio driver's methods
//   call_worker.cpp        ThreadCall seen from its worker thread (from_thread, check_cancelled)
//   request.cpp            ThreadRequest: a worker's (or foreign thread's) request to the loop
//   context_awaitable.cpp  ContextAwaitable: await func(*args) inside a given context
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/gc_type.hpp"
#include "common/py.hpp"
#include "common/runtime.hpp"
#include "common/tunables.hpp"

namespace anyio::threads {

// --- states --------------------------------------------------------------------------

// A job's life as its worker thread sees it. The values are Python-visible
// (ThreadCall.status, read by anyio._tasks_info).
enum class JobStatus : unsigned char { Pending = 0, Running = 1, Done = 2, Abandoned = 3 };
enum class ItemKind : unsigned char { Done, Request };
enum class RequestKind : unsigned char { Sync, Async };

// One entry of the completion queue.
struct Item {
  ItemKind kind;
  PyObject* obj;  // strong: a ThreadCall (Done) or a ThreadRequest (Request)
};

using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

struct WorkerPool {
  PyObject_HEAD
  // --- job side (threads) -------------------------------------------------
  boost::asio::io_context* ioc;
  std::optional<WorkGuard>* guard;
  std::mutex* mu;                    // guards the counters below
  size_t idle;                       // workers waiting for a job
  size_t queued;                     // jobs posted, not yet picked up
  size_t threads;                    // live worker threads
  size_t starting;                   // spawned, not yet waiting for jobs (each will take one)
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

// Each type lists the references it owns once; its tp_traverse and tp_clear
// come from the list.
using WorkerPoolRefs = OwnedRefs<&WorkerPool::loop_ref, &WorkerPool::trio_token, &WorkerPool::drain_cb,
                                 &WorkerPool::wake_ctx, &WorkerPool::default_limiter, &WorkerPool::exited>;

struct ThreadRequest {
  PyObject_HEAD
  RequestKind kind;
  bool done;
  PyObject* func;
  PyObject* args;
  PyObject* context;
  PyObject* result;
  PyObject* exc;
  PyObject* call;  // the ThreadCall whose worker made the request, or null (strong)
  std::mutex* mu;
  std::condition_variable* cv;
};

using ThreadRequestRefs = OwnedRefs<&ThreadRequest::func, &ThreadRequest::args, &ThreadRequest::context,
                                    &ThreadRequest::result, &ThreadRequest::exc, &ThreadRequest::call>;

extern PyTypeObject* WorkerPoolType;
extern PyTypeObject* ThreadRequestType;
extern PyTypeObject* ThreadCallType;

// Objects the component looks up at registration.
struct ThreadGlobals {
  PyObject* RunFinishedError = nullptr;
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

// --- the pool (GIL held unless stated) -----------------------------------------------

WorkerPool* pool_for_loop(PyObject* loop);       // borrowed, created on demand
WorkerPool* pool_new(bool is_trio);              // new reference; asyncio pools come from pool_for_loop
int pool_submit(WorkerPool* p, PyObject* call);  // takes a new reference to call
// Queues a completion or request (steals obj). True if the caller must then
// wake the loop with pool_wakeup (the first item after a drain).
bool pool_push(WorkerPool* p, ItemKind kind, PyObject* obj);
// Schedules a drain on the loop thread through the loop's own thread-safe
// wake-up (call_soon_threadsafe / TrioToken.run_sync_soon). GIL held. If the
// loop is closed or the run is over, marks it gone and drops the queue as
// a gone loop does (requests fail with RunFinishedError).
void pool_wakeup(WorkerPool* p);
// The loop side of a wake-up: processes every queued completion and request.
PyObject* pool_drain(PyObject* pool, PyObject* unused);
// Drops what is queued once the loop cannot process it any more.
void pool_discard(WorkerPool* p);
// Closes the pool: idle workers leave. `wait`: wait briefly for them and join
// their threads (not from a weakref callback or a finalizer).
int pool_close(WorkerPool* p, bool wait = true);
// close_worker_pool(loop) and the interpreter-exit hook.
int pool_close_for_loop(PyObject* loop);
void pool_close_idle();
bool pool_loop_finished(WorkerPool* p);  // GIL held
PyObject* run_finished_error();

// --- worker threads (workers.cpp) ------------------------------------------------------

// Starts one worker thread for `p` (a threading.Thread, so that threading
// knows it); the caller has counted it in p->threads.
int spawn_worker(WorkerPool* p);
// Posts `call` (a new reference the handler consumes) to the pool's job queue.
void post_job(WorkerPool* p, PyObject* call);
bool pool_sole_busy_worker(WorkerPool* p);  // no other worker is running a job (GIL not needed)
int register_workers(PyObject* module);

// The run-time settings, starting from the tunables (common/tunables.hpp).
struct Settings {
  double idle_timeout = tunables::kWorkerIdleTimeout;
  double worker_spin =
      std::thread::hardware_concurrency() >= tunables::kWorkerSpinMinCores ? tunables::kWorkerSpin : 0.0;
  double reply_spin =
      std::thread::hardware_concurrency() >= tunables::kReplySpinMinCores ? tunables::kReplySpin : 0.0;
};
extern Settings settings;

// Tells the CPU this thread is polling (frees the core's resources for its
// sibling hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Busy-waits (GIL released) until `done()` or `seconds` have passed; returns
// whether `done()` became true.
template <class Done>
bool spin_until(double seconds, Done done) {
  auto until =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    for (int i = 0; i < tunables::kSpinPausesPerPoll; ++i) cpu_relax();
  }
}

// --- requests (request.cpp) ------------------------------------------------------------

PyObject* request_new(RequestKind kind, PyObject* func, PyObject* args, PyObject* context, PyObject* call);
void request_finish(ThreadRequest* r, PyObject* result, PyObject* exc);  // borrows both
void request_fail_run_finished(ThreadRequest* r);                        // finishes it with RunFinishedError
// Runs a synchronous request on the loop's thread and finishes it. Returns
// (new reference) what the function raised if that is no Exception subclass
// (SystemExit, KeyboardInterrupt...): on asyncio the loop callback re-raises
// it as well, so it ends the loop as in any callback (upstream does the same).
PyObject* request_run_sync(ThreadRequest* r);
// Releases the GIL while waiting. With a pool, gives up with RunFinishedError
// once the pool's event loop has finished (nothing would ever answer).
// `wake`: the pool's loop still has to be woken (done first, with the GIL).
PyObject* request_wait(ThreadRequest* r, WorkerPool* pool = nullptr, bool wake = false);

// --- ThreadCall hooks used by the pool -------------------------------------------------

bool call_run_job(WorkerPool* p, PyObject* call);  // worker thread, GIL held; result of pool_push
void call_resolve(PyObject* call);                 // loop thread: the job is done, wake the waiter
// 1 if the caller's side takes the async request (its host task on Trio, a
// task below its cancel scope on asyncio), 0 if it needs a task of its own.
int call_host_request(PyObject* call, PyObject* request);

// --- exceptions as single objects (3.10 .. 3.13) ---------------------------------------

PyObject* fetch_exception();
void restore_exception(PyObject* exc);  // steals
// Raises an outcome in the caller (steals): chains it to the exception the
// caller is handling, as `raise exc` would.
void raise_exception(PyObject* exc);

// The iterator `await obj` would drive (context_awaitable.cpp).
PyObject* await_iter(PyObject* obj);

int register_pool_type(PyObject* module);
int register_thread_call(PyObject* module);
int register_thread_request(PyObject* module);
int register_context_awaitable(PyObject* module);

// introspection (task tree): what a ThreadCall's waiter waits on, for a
// snapshot only: ("thread", func or None, status: str, limiter or None,
// acquiring_token: bool, running_for: float | None).
PyObject* call_waits_on(PyObject* obj);

}  // namespace anyio::threads
