// The per-loop worker pool: Asio job queue, worker threads, completion queue.
#include <boost/asio/post.hpp>

#include <atomic>
#include <thread>
#include <cmath>
#include <unordered_map>

#include <pthread.h>

#include "cancel/core.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

PyTypeObject* PoolType = nullptr;
ThreadGlobals TG;

namespace {

// Loop -> pool. A pool leaves the map when it closes or its loop dies, so a
// later call on the same loop starts a fresh one.
std::unordered_map<PyObject*, Pool*> g_pools;
// A per-thread cache of the last lookup. It borrows: a thread that ran a loop
// and exited must not keep its pool. Every pool that leaves the map bumps
// g_pools_epoch, which invalidates the caches of all threads at once.
uint64_t g_pools_epoch = 1;
ANYIO_TLS PyObject* tls_loop = nullptr;
ANYIO_TLS Pool* tls_pool = nullptr;
ANYIO_TLS uint64_t tls_epoch = 0;

// Worker-thread state.
ANYIO_TLS PyThreadState* tls_tstate = nullptr;

PyObject* g_thread_cls = nullptr;      // threading.Thread
PyObject* g_worker_main = nullptr;     // the builtin the threads run
PyObject* g_current_thread = nullptr;  // threading.current_thread
PyObject* g_thread_name = nullptr;     // "AnyIO worker thread"

double g_default_idle_timeout = 10.0;

void forget(Pool* p) {
  if (!p->loop) return;
  auto it = g_pools.find(p->loop);
  if (it != g_pools.end() && it->second == p) {
    g_pools.erase(it);
    g_pools_epoch++;
    Py_DECREF(p);  // the map's reference
  }
}

// Takes every queued completion out (GIL held).
std::vector<Item> take_items(Pool* p) {
  std::vector<Item> items;
  std::lock_guard<std::mutex> lk(*p->cmu);
  items.swap(*p->completed);
  p->signaled = false;
  return items;
}

}  // namespace

PyObject* run_finished_error() {
  if (TG.RunFinishedError) return PyObject_CallNoArgs(TG.RunFinishedError);
  return PyObject_CallFunction(PyExc_RuntimeError, "s", "The event loop has already finished");
}

bool pool_loop_finished(Pool* p) {
  if (p->loop_gone) return true;
  if (p->is_trio) return false;
  if (!p->loop) return true;
  PyObject* closed = call_method0(p->loop, TG.s_is_closed);
  if (!closed) {
    PyErr_Clear();
    return false;
  }
  bool yes = closed == Py_True;
  Py_DECREF(closed);
  return yes;
}

namespace {

void fail_request(PyObject* req) {
  PyObject* e = run_finished_error();
  if (!e) {
    e = fetch_exception();
  }
  request_finish(reinterpret_cast<Request*>(req), nullptr, e);
  Py_XDECREF(e);
}

// Drops what is queued once the loop cannot process it any more.
void discard_items(Pool* p) {
  for (Item& it : take_items(p)) {
    if (it.kind == ITEM_REQUEST)
      fail_request(it.obj);
    else
      p->outstanding--;
    Py_DECREF(it.obj);
  }
}

void process(Pool* p, Item& it) {
  if (it.kind == ITEM_DONE) {
    p->outstanding--;
    call_resolve(it.obj);
    return;
  }
  auto* r = reinterpret_cast<Request*>(it.obj);
  if (r->kind == REQ_SYNC) {
    request_run_sync(r);
    return;
  }
  // An async request from a worker whose caller still waits: its caller's
  // side runs it (call_host_request); otherwise it gets a task of its own.
  int taken = r->call ? call_host_request(r->call, it.obj) : 0;
  if (taken < 0) {
    PyObject* e = fetch_exception();
    request_finish(r, nullptr, e);
    Py_XDECREF(e);
    return;
  }
  if (taken) return;
  PyObject* spawn = hook("spawn_request");
  PyObject* res = nullptr;
  if (spawn) {
    PyObject* args[] = {reinterpret_cast<PyObject*>(p), it.obj};
    res = PyObject_Vectorcall(spawn, args, 2, nullptr);
  }
  if (!res) {
    PyObject* e = fetch_exception();
    request_finish(r, nullptr, e);
    Py_XDECREF(e);
  }
  Py_XDECREF(res);
}

PyObject* pool_drain(PyObject* self_obj, PyObject* /*unused*/) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  Py_INCREF(p);
  // A drain that finds nothing (the queue was taken by an earlier one, or
  // dropped because the loop is gone) is harmless.
  std::vector<Item> items = take_items(p);
  for (Item& it : items) {
    process(p, it);
    if (PyErr_Occurred()) PyErr_WriteUnraisable(self_obj);
    Py_DECREF(it.obj);
  }
  Py_DECREF(p);
  Py_RETURN_NONE;
}

// The loop died (its weakref fired): nothing can be delivered any more.
PyObject* pool_loop_died(PyObject* self_obj, PyObject* /*ref*/) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  Py_INCREF(p);
  forget(p);
  p->loop = nullptr;
  p->loop_gone = true;
  // No waiting and no Thread.join() here: a weakref callback runs wherever
  // the loop happens to be freed, which may be the garbage collector inside
  // threading's own bookkeeping (a join there deadlocks on its lock).
  pool_close(p, false);
  discard_items(p);
  Py_DECREF(p);
  Py_RETURN_NONE;
}

PyMethodDef drain_def = {"_drain", pool_drain, METH_NOARGS, nullptr};
PyMethodDef loop_died_def = {"_loop_died", pool_loop_died, METH_O, nullptr};

Pool* pool_alloc(bool is_trio) {
  auto* p = PyObject_GC_New(Pool, PoolType);
  if (!p) return nullptr;
  p->ioc = new boost::asio::io_context(BOOST_ASIO_CONCURRENCY_HINT_SAFE);
  p->guard = new std::optional<WorkGuard>(boost::asio::make_work_guard(*p->ioc));
  p->mu = new std::mutex();
  p->idle = p->queued = p->threads = 0;
  p->idle_timeout = g_default_idle_timeout;
  p->closing = false;
  p->exit_cv = new std::condition_variable();
  p->exited = nullptr;
  p->cmu = new std::mutex();
  p->completed = new std::vector<Item>();
  p->signaled = false;
  p->is_trio = is_trio;
  p->loop_gone = false;
  p->outstanding = 0;
  p->loop = nullptr;
  p->loop_ref = nullptr;
  p->trio_token = nullptr;
  p->drain_cb = nullptr;
  p->wake_ctx = nullptr;
  p->default_limiter = nullptr;
  p->weakreflist = nullptr;
  PyObject_GC_Track(p);
  p->drain_cb = PyCFunction_New(&drain_def, reinterpret_cast<PyObject*>(p));
  p->exited = PyList_New(0);
  if (!p->drain_cb || !p->exited) {
    Py_DECREF(p);
    return nullptr;
  }
  return p;
}

Pool* new_asyncio_pool(PyObject* loop) {
  Pool* p = pool_alloc(false);
  if (!p) return nullptr;
  PyObject* self = reinterpret_cast<PyObject*>(p);
  PyObject* died = PyCFunction_New(&loop_died_def, self);
  if (!died) goto fail;
  p->loop_ref = PyWeakref_NewRef(loop, died);
  Py_DECREF(died);
  if (!p->loop_ref) goto fail;
  p->loop = loop;
  // The wake-ups run the drain in an empty context of their own rather than
  // in a copy of the waking worker's (which, inside from_thread.run, is the
  // job's context): no caller's context variables stay reachable through a
  // queued handle, and no context is copied per wake-up.
  p->wake_ctx = PyContext_New();
  if (!p->wake_ctx) goto fail;
  return p;
fail:
  p->loop = nullptr;
  pool_close(p);
  Py_DECREF(p);
  return nullptr;
}

// --- worker threads -----------------------------------------------------------

void name_os_thread() {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), "anyio-worker");
#elif defined(__APPLE__)
  pthread_setname_np("anyio-worker");
#endif
}

// The job handler: runs on a worker thread without the GIL.
void run_posted(Pool* p, PyObject* call) {
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

std::atomic<bool> g_spinning{false};
// Polling only pays when a spare core runs the poller: with two cores or fewer
// it takes CPU time from the event loop thread it waits for (measured).
double g_spin_seconds = std::thread::hardware_concurrency() > 2 ? 50e-6 : 0.0;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

bool spin_for_job(Pool* p) {
  if (g_spin_seconds <= 0 || p->closing) return false;
  {
    // Only the one-at-a-time pattern gains; with other jobs running the
    // spinning would take CPU time from them.
    std::lock_guard<std::mutex> lk(*p->mu);
    if (p->threads - p->idle > 0) return false;
  }
  bool expected = false;
  if (!g_spinning.compare_exchange_strong(expected, true)) return false;
  auto until =
      std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                             std::chrono::duration<double>(g_spin_seconds));
  bool ran = false;
  while (!ran) {
    bool pending;
    {
      std::lock_guard<std::mutex> lk(*p->mu);
      pending = p->queued > 0;
    }
    if (pending) {
      g_spinning.store(false);
      ran = p->ioc->poll_one() > 0;
      return ran;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    for (int i = 0; i < 64; ++i) cpu_relax();
  }
  g_spinning.store(false);
  return false;
}

// Body of each worker thread (called as the target of a threading.Thread).
PyObject* fn_worker_main(PyObject*, PyObject* pool_obj) {
  if (Py_TYPE(pool_obj) != PoolType) return raise(PyExc_TypeError, "expected a worker pool");
  auto* p = reinterpret_cast<Pool*>(pool_obj);
  PyObject* me = PyObject_CallNoArgs(g_current_thread);
  if (!me) return nullptr;
  Py_INCREF(p);
  name_os_thread();
  PyThreadState* saved_outer = tls_tstate;
  tls_tstate = PyEval_SaveThread();
  {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->idle++;  // the handler takes this down while it runs a job and back up after
  }
  for (;;) {
    double secs = p->idle_timeout;
    auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(secs > 0 ? secs : 0));
    // One idle worker at a time polls briefly before sleeping: a caller that
    // awaits jobs one after another then hands the next one over without a
    // futex wake-up of this thread.
    if (spin_for_job(p)) continue;
    size_t n = p->ioc->run_one_for(timeout);
    if (n && !p->closing) continue;
    // Timed out, or the pool is closing: leave unless a job waits for us.
    // Decided with the GIL held, so that a closing pool sees this thread in
    // `exited` as soon as the counters say it left.
    PyEval_RestoreThread(tls_tstate);
    std::unique_lock<std::mutex> lk(*p->mu);
    if (p->queued > 0 && (p->queued >= p->idle || p->closing) && !p->ioc->stopped()) {
      lk.unlock();
      tls_tstate = PyEval_SaveThread();
      continue;
    }
    p->idle--;
    p->threads--;
    if (PyList_Append(p->exited, me) < 0) PyErr_Clear();
    lk.unlock();
    p->exit_cv->notify_all();
    break;
  }
  tls_tstate = saved_outer;
  Py_DECREF(me);
  Py_DECREF(p);
  Py_RETURN_NONE;
}

PyMethodDef worker_main_def = {"_worker_main", fn_worker_main, METH_O, nullptr};

int spawn_worker(Pool* p) {
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

// --- Python type ------------------------------------------------------------

int pool_traverse(Pool* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->loop_ref);
  Py_VISIT(self->trio_token);
  Py_VISIT(self->drain_cb);
  Py_VISIT(self->wake_ctx);
  Py_VISIT(self->default_limiter);
  Py_VISIT(self->exited);
  return 0;
}

int pool_clear(Pool* self) {
  Py_CLEAR(self->loop_ref);
  Py_CLEAR(self->trio_token);
  Py_CLEAR(self->drain_cb);
  Py_CLEAR(self->wake_ctx);
  Py_CLEAR(self->default_limiter);
  Py_CLEAR(self->exited);
  return 0;
}

void pool_dealloc(Pool* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  pool_clear(self);
  // Workers hold a reference, so none is left; a queued wake-up holds one
  // (through drain_cb), so normally nothing is queued either.
  discard_items(self);
  delete self->guard;
  delete self->ioc;
  delete self->mu;
  delete self->exit_cv;
  delete self->cmu;
  delete self->completed;
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* pool_py_close(PyObject* self, PyObject*) {
  if (pool_close(reinterpret_cast<Pool*>(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Trio: the run ended; nothing queued can be delivered.
PyObject* pool_py_abort(PyObject* self_obj, PyObject*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  p->loop_gone = true;
  if (pool_close(p) < 0) return nullptr;
  discard_items(p);
  Py_RETURN_NONE;
}

PyObject* pool_get_threads(PyObject* self_obj, void*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  std::lock_guard<std::mutex> lk(*p->mu);
  return PyLong_FromSize_t(p->threads);
}

PyObject* pool_get_idle(PyObject* self_obj, void*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  std::lock_guard<std::mutex> lk(*p->mu);
  return PyLong_FromSize_t(p->idle);
}

PyObject* pool_get_timeout(PyObject* self_obj, void*) {
  return PyFloat_FromDouble(reinterpret_cast<Pool*>(self_obj)->idle_timeout);
}

int pool_set_timeout(PyObject* self_obj, PyObject* value, void*) {
  double v = value ? PyFloat_AsDouble(value) : -1;
  if (v == -1 && PyErr_Occurred()) return -1;
  if (!(v >= 0) || std::isinf(v)) {
    PyErr_SetString(PyExc_ValueError, "idle timeout must be a finite number >= 0");
    return -1;
  }
  reinterpret_cast<Pool*>(self_obj)->idle_timeout = v;
  return 0;
}

PyObject* pool_get_closing(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<Pool*>(self_obj)->closing);
}

PyObject* pool_get_outstanding(PyObject* self_obj, void*) {
  return PyLong_FromSsize_t(reinterpret_cast<Pool*>(self_obj)->outstanding);
}

PyObject* pool_get_limiter(PyObject* self_obj, void*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  PyObject* r = p->default_limiter ? p->default_limiter : Py_None;
  Py_INCREF(r);
  return r;
}

int pool_set_limiter(PyObject* self_obj, PyObject* value, void*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  if (value == Py_None) value = nullptr;
  Py_XINCREF(value);
  Py_XSETREF(p->default_limiter, value);
  return 0;
}

PyObject* pool_get_token(PyObject* self_obj, void*) {
  auto* p = reinterpret_cast<Pool*>(self_obj);
  PyObject* r = p->is_trio ? (p->trio_token ? p->trio_token : Py_None) : (p->loop ? p->loop : Py_None);
  Py_INCREF(r);
  return r;
}

PyObject* pool_get_is_trio(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<Pool*>(self_obj)->is_trio);
}

PyMethodDef pool_methods[] = {
    {"close", pool_py_close, METH_NOARGS, "Stop idle workers; running jobs still finish."},
    {"abort", pool_py_abort, METH_NOARGS, "The run is over: close and drop what cannot be delivered."},
    {"drain", pool_drain, METH_NOARGS, "Process finished jobs and worker requests."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef pool_getset[] = {
    {"threads", pool_get_threads, nullptr, "Live worker threads.", nullptr},
    {"idle", pool_get_idle, nullptr, "Workers waiting for a job.", nullptr},
    {"idle_timeout", pool_get_timeout, pool_set_timeout, "Seconds an idle worker lingers.", nullptr},
    {"closing", pool_get_closing, nullptr, nullptr, nullptr},
    {"outstanding", pool_get_outstanding, nullptr, nullptr, nullptr},
    {"default_limiter", pool_get_limiter, pool_set_limiter, nullptr, nullptr},
    {"token", pool_get_token, nullptr, "The asyncio loop or the Trio token.", nullptr},
    {"is_trio", pool_get_is_trio, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef pool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Pool, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot pool_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(pool_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(pool_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(pool_clear)},
    {Py_tp_methods, pool_methods},
    {Py_tp_getset, pool_getset},
    {Py_tp_members, pool_members},
    {0, nullptr},
};

PyType_Spec pool_spec = {
    "anyio._cpp.WorkerPool",
    sizeof(Pool),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    pool_slots,
};

// --- module functions -----------------------------------------------------------

PyObject* fn_current_pool(PyObject*, PyObject*) {
  PyObject* loop = running_loop();
  if (!loop) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
  }
  Pool* p = pool_for_loop(loop);
  if (!p) return nullptr;
  Py_INCREF(p);
  return reinterpret_cast<PyObject*>(p);
}

PyObject* fn_new_trio_pool(PyObject*, PyObject* token) {
  Pool* p = pool_alloc(true);
  if (!p) return nullptr;
  Py_INCREF(token);
  p->trio_token = token;
  return reinterpret_cast<PyObject*>(p);
}

PyObject* fn_set_default_idle_timeout(PyObject*, PyObject* value) {
  double v = PyFloat_AsDouble(value);
  if (v == -1 && PyErr_Occurred()) return nullptr;
  if (!(v >= 0) || std::isinf(v)) return raise(PyExc_ValueError, "idle timeout must be a finite number >= 0");
  double old = g_default_idle_timeout;
  g_default_idle_timeout = v;
  return PyFloat_FromDouble(old);
}

// A worker waiting for the event loop's answer (from_thread, blocking portal
// calls) polls for this long before sleeping. Unlike an idle worker it does
// not compete with the loop for the job it waits for; on two cores it still
// keeps its CPU from going idle, which on a virtual machine makes the
// loop's answer arrive tens of microseconds sooner (measured).
double g_reply_spin_seconds = std::thread::hardware_concurrency() >= 2 ? 50e-6 : 0.0;

PyObject* fn_set_reply_spin(PyObject*, PyObject* value) {
  double v = PyFloat_AsDouble(value);
  if (v == -1 && PyErr_Occurred()) return nullptr;
  double old = g_reply_spin_seconds;
  g_reply_spin_seconds = v;
  return PyFloat_FromDouble(old);
}

PyObject* fn_set_spin(PyObject*, PyObject* value) {
  double v = PyFloat_AsDouble(value);
  if (v == -1 && PyErr_Occurred()) return nullptr;
  double old = g_spin_seconds;
  g_spin_seconds = v;
  return PyFloat_FromDouble(old);
}

PyObject* fn_set_hooks(PyObject*, PyObject* hooks) {
  if (!PyDict_Check(hooks)) return raise(PyExc_TypeError, "hooks must be a dict");
  Py_INCREF(hooks);
  Py_XSETREF(TG.hooks, hooks);
  Py_RETURN_NONE;
}

// close_worker_pool(loop): the loop's run is over (anyio.run calls this once
// the loop is closed); idle workers leave now rather than at their timeout.
PyObject* fn_close_pool(PyObject*, PyObject* loop) {
  auto it = g_pools.find(loop);
  if (it == g_pools.end()) Py_RETURN_NONE;
  Pool* p = it->second;
  Py_INCREF(p);
  int rc = pool_close(p);
  Py_DECREF(p);
  if (rc < 0) return nullptr;
  Py_RETURN_NONE;
}

// At interpreter exit (threading's atexit hooks run before it joins
// non-daemon threads): the pools of loops that no longer run let their idle
// workers go, so that they do not hold up the exit until their idle timeout.
PyObject* fn_close_idle_pools(PyObject*, PyObject*) {
  std::vector<Pool*> pools;
  for (auto& kv : g_pools) {
    Py_INCREF(kv.second);
    pools.push_back(kv.second);
  }
  PyObject* s_is_running = PyUnicode_InternFromString("is_running");
  for (Pool* p : pools) {
    bool running = false;
    if (p->loop && s_is_running) {
      PyObject* r = call_method0(p->loop, s_is_running);
      running = r == Py_True;
      Py_XDECREF(r);
      PyErr_Clear();
    }
    if (!running && pool_close(p) < 0) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(p));
    Py_DECREF(p);
  }
  Py_XDECREF(s_is_running);
  PyErr_Clear();
  Py_RETURN_NONE;
}

PyMethodDef module_fns[] = {
    {"close_worker_pool", fn_close_pool, METH_O,
     "Close the worker pool of an event loop whose run is over (idle workers leave at once)."},
    {"_close_idle_worker_pools", fn_close_idle_pools, METH_NOARGS, nullptr},
    {"current_worker_pool", fn_current_pool, METH_NOARGS,
     "The worker pool of the running asyncio loop (created on demand), or None."},
    {"new_trio_worker_pool", fn_new_trio_pool, METH_O, "A worker pool that reports through a Trio token."},
    {"set_default_idle_timeout", fn_set_default_idle_timeout, METH_O,
     "Set the idle timeout of pools created from now on; returns the previous value."},
    {"_set_thread_hooks", fn_set_hooks, METH_O, nullptr},
    {"set_reply_spin", fn_set_reply_spin, METH_O,
     "Seconds a worker waiting for the loop's answer polls before sleeping (0 disables); returns the "
     "previous value."},
    {"set_worker_spin", fn_set_spin, METH_O,
     "Seconds an idle worker polls for a job before sleeping (0 disables); returns the previous value."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

double worker_spin_seconds() { return g_spin_seconds; }
double reply_spin_seconds() { return g_reply_spin_seconds; }

bool pool_sole_busy_worker(Pool* p) {
  std::lock_guard<std::mutex> lk(*p->mu);
  return p->threads - p->idle <= 1;
}

PyObject* hook(const char* name) {
  if (!TG.hooks) {
    PyErr_SetString(PyExc_RuntimeError, "anyio._threads is not initialised");
    return nullptr;
  }
  PyObject* h = PyDict_GetItemString(TG.hooks, name);
  if (!h) PyErr_Format(PyExc_RuntimeError, "missing thread hook %s", name);
  return h;
}

Pool* pool_for_loop(PyObject* loop) {
  if (loop == tls_loop && tls_epoch == g_pools_epoch) return tls_pool;
  Pool* p;
  auto it = g_pools.find(loop);
  if (it != g_pools.end() && !it->second->closing) {
    p = it->second;
  } else {
    if (it != g_pools.end()) {
      Pool* old = it->second;
      g_pools.erase(it);
      g_pools_epoch++;
      Py_DECREF(old);
    }
    p = new_asyncio_pool(loop);
    if (!p) return nullptr;
    g_pools[loop] = p;  // owns the new reference
  }
  tls_pool = p;
  tls_loop = loop;
  tls_epoch = g_pools_epoch;
  return p;
}

int pool_submit(Pool* p, PyObject* call) {
  if (p->exited && PyList_GET_SIZE(p->exited) > 0) {
    // Workers that left on the idle timeout: nothing to wait for.
    if (PyList_SetSlice(p->exited, 0, PY_SSIZE_T_MAX, nullptr) < 0) PyErr_Clear();
  }
  if (p->closing) {
    PyErr_SetString(PyExc_RuntimeError, "the worker pool is closed");
    return -1;
  }
  bool spawn;
  {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->queued++;
    spawn = p->queued > p->idle;
    if (spawn) p->threads++;
  }
  if (spawn && spawn_worker(p) < 0) {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->queued--;
    p->threads--;
    return -1;
  }
  Py_INCREF(call);
  p->outstanding++;
  boost::asio::post(*p->ioc, [p, call] { run_posted(p, call); });
  return 0;
}

bool pool_push(Pool* p, ItemKind kind, PyObject* obj) {
  if (p->loop_gone) {
    if (kind == ITEM_REQUEST)
      fail_request(obj);
    else
      p->outstanding--;
    Py_DECREF(obj);
    return false;
  }
  bool first;
  {
    std::lock_guard<std::mutex> lk(*p->cmu);
    p->completed->push_back(Item{kind, obj});
    first = !p->signaled;
    p->signaled = true;
  }
  // Only the first item after a drain needs a wake-up.
  return first;
}

// The loop is woken through its own thread-safe entry point, not through a
// descriptor of ours: code that checks it leaks no descriptors (counting them
// before and after a to_thread or subprocess session in one loop) must see
// none added, as with upstream. Batched by `signaled`: only the first item
// after a drain calls here, so a burst of completions costs one wake-up.
void pool_wakeup(Pool* p) {
  if (p->loop_gone) return;  // pool_push already dropped what it was given
  PyObject* r;
  if (p->is_trio) {
    // Callbacks the token accepts run before the run ends (Trio drains its
    // queue on the way out); once it has ended, RunFinishedError.
    r = call_method1(p->trio_token, TG.s_run_sync_soon, p->drain_cb);
  } else if (p->loop) {
    PyObject* args[] = {p->loop, p->drain_cb, p->wake_ctx};
    r = PyObject_VectorcallMethod(TG.s_call_soon_threadsafe, args, 2, TG.kw_context);
  } else {
    return;
  }
  if (r) {
    Py_DECREF(r);
    return;
  }
  if (PyErr_ExceptionMatches(PyExc_RuntimeError)) {
    // The loop is closed (or the Trio run over): nothing will ever drain.
    // Treated as a loop that is gone: late outcomes are dropped and waiting
    // from_thread requests fail with RunFinishedError, instead of waiting in
    // the queue for the loop's weak reference to die.
    PyErr_Clear();
    p->loop_gone = true;
    discard_items(p);
    return;
  }
  // Anything else (say, MemoryError): report it and let the next item try
  // again.
  PyErr_WriteUnraisable(p->drain_cb);
  std::lock_guard<std::mutex> lk(*p->cmu);
  p->signaled = false;
}

// Joins the threads of workers that have left (their exit is imminent).
void join_exited(Pool* p) {
  if (!p->exited || PyList_GET_SIZE(p->exited) == 0) return;
  PyObject* list = p->exited;
  p->exited = PyList_New(0);
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
    PyObject* r = PyObject_CallMethod(PyList_GET_ITEM(list, i), "join", nullptr);
    if (!r) PyErr_WriteUnraisable(PyList_GET_ITEM(list, i));
    Py_XDECREF(r);
  }
  Py_DECREF(list);
  if (!p->exited) PyErr_Clear();
}

int pool_close(Pool* p, bool wait) {
  if (!p->closing) {
    p->closing = true;
    forget(p);
    // Without the guard the io_context stops once the last job is done; until
    // then (abandoned jobs may still run) one no-op per idle worker wakes it.
    p->guard->reset();
    size_t idle, busy;
    {
      std::lock_guard<std::mutex> lk(*p->mu);
      idle = p->idle;
      busy = p->threads - p->idle;
    }
    for (size_t i = 0; i < idle; ++i) boost::asio::post(*p->ioc, [] {});
    // Wait (briefly, without the GIL) for the idle workers to leave and join
    // them, so the thread count is back to normal when the run returns.
    // The lock is scoped inside: it must be released before the GIL is taken
    // back, as workers take the GIL first and this mutex second.
    if (wait) {
      Py_BEGIN_ALLOW_THREADS
        {
          std::unique_lock<std::mutex> lk(*p->mu);
          p->exit_cv->wait_for(lk, std::chrono::milliseconds(200), [p, busy] { return p->threads <= busy; });
        }
      Py_END_ALLOW_THREADS
    }
  }
  if (wait) join_exited(p);
  return 0;
}

int register_threads_pool(PyObject* module) {
  PoolType = add_type(module, &pool_spec);
  if (!PoolType) return -1;
  if (PyModule_AddFunctions(module, module_fns) < 0) return -1;
  g_worker_main = PyCFunction_NewEx(&worker_main_def, nullptr, nullptr);
  if (!g_worker_main) return -1;
  PyObject* threading = PyImport_ImportModule("threading");
  if (!threading) return -1;
  g_thread_cls = PyObject_GetAttrString(threading, "Thread");
  g_current_thread = PyObject_GetAttrString(threading, "current_thread");
  Py_DECREF(threading);
  if (!g_thread_cls || !g_current_thread) return -1;
  g_thread_name = PyUnicode_InternFromString("AnyIO worker thread");
  if (!g_thread_name) return -1;
  auto intern = [](const char* s) { return PyUnicode_InternFromString(s); };
  TG.s_is_closed = intern("is_closed");
  TG.s_run_sync_soon = intern("run_sync_soon");
  TG.s_acquire_nowait = intern("acquire_on_behalf_of_nowait");
  TG.s_acquire = intern("acquire_on_behalf_of");
  TG.s_release = intern("release_on_behalf_of");
  TG.s_context = intern("context");
  TG.s_call_soon_threadsafe = intern("call_soon_threadsafe");
  TG.kw_context = Py_BuildValue("(s)", "context");
  if (!TG.kw_context) return -1;
  PyObject* exc = PyImport_ImportModule("anyio._exceptions");
  if (!exc) return -1;
  TG.WouldBlock = PyObject_GetAttrString(exc, "WouldBlock");
  TG.NoEventLoopError = PyObject_GetAttrString(exc, "NoEventLoopError");
  TG.RunFinishedError = PyObject_GetAttrString(exc, "RunFinishedError");
  Py_DECREF(exc);
  if (!TG.WouldBlock || !TG.NoEventLoopError || !TG.RunFinishedError) return -1;
  return 0;
}

}  // namespace anyio::threads
