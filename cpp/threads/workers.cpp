// The worker threads of a WorkerPool: each is a threading.Thread whose target
// waits for jobs in the pool's io_context with the GIL released.
#include <boost/asio/post.hpp>

#include <atomic>

#include <pthread.h>

#include "threads/threads.hpp"

namespace anyio::threads {

namespace {

// The worker thread's own thread state while it waits without the GIL.
ANYIO_TLS PyThreadState* tls_tstate = nullptr;

PyObject* g_thread_cls = nullptr;      // threading.Thread
PyObject* g_worker_main = nullptr;     // the builtin the threads run
PyObject* g_current_thread = nullptr;  // threading.current_thread
PyObject* g_thread_name = nullptr;     // "AnyIO worker thread"

// At most one idle worker (of all pools) polls for a job at a time.
std::atomic<bool> g_spinning{false};

void name_os_thread() {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), "anyio-worker");
#elif defined(__APPLE__)
  pthread_setname_np("anyio-worker");
#endif
}

// The job handler: runs on a worker thread without the GIL.
void run_posted(WorkerPool* p, PyObject* call) {
  {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->queued--;
    p->idle--;
  }
  PyEval_RestoreThread(tls_tstate);
  bool wake = call_run_job(p, call);  // consumes the reference
  {
    // Idle again before the loop can see the outcome: a caller that submits
    // its next job straight away then reuses this thread instead of starting
    // another one.
    std::lock_guard<std::mutex> lk(*p->mu);
    p->idle++;
  }
  // The wake-up goes through the loop's own thread-safe call, which needs the
  // GIL, so it is the last thing done before letting go of it: the loop
  // thread, woken from its selector, then finds the GIL free (or released
  // within the few instructions left here) instead of queueing for it while
  // this thread still runs Python code. Waking after releasing the GIL
  // would cost a second GIL round trip for this thread.
  if (wake) pool_wakeup(p);
  tls_tstate = PyEval_SaveThread();
}

// One idle worker at a time polls briefly before sleeping: a caller that
// awaits jobs one after another then hands the next one over without a futex
// wake-up of this thread. True if it ran a job.
bool spin_for_job(WorkerPool* p) {
  if (settings.worker_spin <= 0 || p->closing) return false;
  {
    // Only the one-at-a-time pattern gains; with other jobs running the
    // spinning would take CPU time from them.
    std::lock_guard<std::mutex> lk(*p->mu);
    if (p->threads - p->idle > 0) return false;
  }
  bool expected = false;
  if (!g_spinning.compare_exchange_strong(expected, true)) return false;
  bool pending = spin_until(settings.worker_spin, [p] {
    std::lock_guard<std::mutex> lk(*p->mu);
    return p->queued > 0;
  });
  g_spinning.store(false);
  return pending && p->ioc->poll_one() > 0;
}

// Timed out or closing: whether the worker may leave (GIL held, so that a
// closing pool sees this thread in `exited` as soon as the counters say it
// left). A worker a queued job still needs stays.
bool leave_pool(WorkerPool* p, PyObject* me) {
  std::unique_lock<std::mutex> lk(*p->mu);
  if (p->queued > 0 && (p->queued >= p->idle || p->closing) && !p->ioc->stopped()) return false;
  p->idle--;
  p->threads--;
  if (PyList_Append(p->exited, me) < 0) PyErr_Clear();
  lk.unlock();
  p->exit_cv->notify_all();
  return true;
}

// Body of each worker thread (called as the target of a threading.Thread).
PyObject* fn_worker_main(PyObject*, PyObject* pool_obj) {
  if (Py_TYPE(pool_obj) != WorkerPoolType) return raise(PyExc_TypeError, "expected a worker pool");
  auto* p = reinterpret_cast<WorkerPool*>(pool_obj);
  PyObject* me = PyObject_CallNoArgs(g_current_thread);
  if (!me) {
    // This worker never starts: it neither runs jobs nor counts as one.
    std::lock_guard<std::mutex> lk(*p->mu);
    p->starting--;
    p->threads--;
    return nullptr;
  }
  Py_INCREF(p);
  name_os_thread();
  PyThreadState* saved_outer = tls_tstate;
  tls_tstate = PyEval_SaveThread();
  {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->starting--;
    p->idle++;  // the handler takes this down while it runs a job and back up after
  }
  for (;;) {
    double secs = p->idle_timeout;
    auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(secs > 0 ? secs : 0));
    if (spin_for_job(p)) continue;
    size_t n = p->ioc->run_one_for(timeout);
    if (n && !p->closing) continue;
    PyEval_RestoreThread(tls_tstate);
    if (leave_pool(p, me)) break;
    tls_tstate = PyEval_SaveThread();
  }
  tls_tstate = saved_outer;
  Py_DECREF(me);
  Py_DECREF(p);
  Py_RETURN_NONE;
}

PyMethodDef worker_main_def = {"_worker_main", fn_worker_main, METH_O, nullptr};

}  // namespace

int spawn_worker(WorkerPool* p) {
  PyObject* args = PyTuple_Pack(1, reinterpret_cast<PyObject*>(p));
  if (!args) return -1;
  // Trio's own worker threads are daemon threads: the interpreter may exit
  // while one is blocked in an abandoned call, or idle. asyncio workers are
  // not (as upstream's): exit waits for the jobs they run.
  PyObject* kwargs = Py_BuildValue("{sOsOsOsO}", "target", g_worker_main, "args", args, "name", g_thread_name,
                                   "daemon", p->is_trio ? Py_True : Py_False);
  Py_DECREF(args);
  if (!kwargs) return -1;
  PyObject* empty = PyTuple_New(0);
  PyObject* th = empty ? PyObject_Call(g_thread_cls, empty, kwargs) : nullptr;
  Py_XDECREF(empty);
  Py_DECREF(kwargs);
  if (!th) return -1;
  PyObject* r = PyObject_CallMethod(th, "start", nullptr);
  Py_DECREF(th);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

void post_job(WorkerPool* p, PyObject* call) {
  boost::asio::post(*p->ioc, [p, call] { run_posted(p, call); });
}

bool pool_sole_busy_worker(WorkerPool* p) {
  std::lock_guard<std::mutex> lk(*p->mu);
  return p->threads - p->idle <= 1;
}

int register_workers(PyObject*) {
  g_worker_main = PyCFunction_NewEx(&worker_main_def, nullptr, nullptr);
  if (!g_worker_main) return -1;
  PyObject* threading = PyImport_ImportModule("threading");
  if (!threading) return -1;
  g_thread_cls = PyObject_GetAttrString(threading, "Thread");
  g_current_thread = PyObject_GetAttrString(threading, "current_thread");
  Py_DECREF(threading);
  if (!g_thread_cls || !g_current_thread) return -1;
  g_thread_name = PyUnicode_InternFromString("AnyIO worker thread");
  return g_thread_name ? 0 : -1;
}

}  // namespace anyio::threads
