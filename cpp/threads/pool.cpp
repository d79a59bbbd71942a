// The loop side of a WorkerPool: which pool serves which loop, submitting
// jobs, the completion queue and the wake-up that drains it, closing.
#include <boost/asio/post.hpp>

#include <unordered_map>

#include "cancel/core.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

ThreadGlobals TG;
Settings settings;

namespace {

// Loop -> pool. A pool leaves the map when it closes or its loop dies, so a
// later call on the same loop starts a fresh one.
std::unordered_map<PyObject*, WorkerPool*> g_pools;
// A per-thread cache of the last lookup. It borrows: a thread that ran a loop
// and exited must not keep its pool. Every pool that leaves the map bumps
// g_pools_epoch, which invalidates the caches of all threads at once.
uint64_t g_pools_epoch = 1;
ANYIO_TLS PyObject* tls_loop = nullptr;
ANYIO_TLS WorkerPool* tls_pool = nullptr;
ANYIO_TLS uint64_t tls_epoch = 0;

void forget(WorkerPool* p) {
  if (!p->loop) return;
  auto it = g_pools.find(p->loop);
  if (it != g_pools.end() && it->second == p) {
    g_pools.erase(it);
    g_pools_epoch++;
    Py_DECREF(p);  // the map's reference
  }
}

// Takes every queued completion out (GIL held).
std::vector<Item> take_items(WorkerPool* p) {
  std::vector<Item> items;
  std::lock_guard<std::mutex> lk(*p->cmu);
  items.swap(*p->completed);
  p->signaled = false;
  return items;
}

// An item the loop will never process: a request fails, a job's outcome is
// dropped.
void drop_item(WorkerPool* p, ItemKind kind, PyObject* obj) {
  if (kind == ItemKind::Request)
    request_fail_run_finished(reinterpret_cast<ThreadRequest*>(obj));
  else
    p->outstanding--;
  Py_DECREF(obj);
}

void fail_with_current_error(ThreadRequest* r) {
  PyObject* e = fetch_exception();
  request_finish(r, nullptr, e);
  Py_XDECREF(e);
}

// An async request from a worker whose caller still waits: its caller's side
// runs it (call_host_request); otherwise it gets a task of its own.
void start_async_request(WorkerPool* p, ThreadRequest* r) {
  int taken = r->call ? call_host_request(r->call, reinterpret_cast<PyObject*>(r)) : 0;
  if (taken < 0) return fail_with_current_error(r);
  if (taken) return;
  PyObject* spawn = ANYIO_REQUIRE_HOOK(spawn_thread_request);
  PyObject* res = nullptr;
  if (spawn) {
    PyObject* args[] = {reinterpret_cast<PyObject*>(p), reinterpret_cast<PyObject*>(r)};
    res = PyObject_Vectorcall(spawn, args, 2, nullptr);
  }
  if (!res) return fail_with_current_error(r);
  Py_DECREF(res);
}

// Returns what a synchronous request raised that the loop must see too (see
// request_run_sync), as a new reference, or null.
PyObject* process(WorkerPool* p, Item& it) {
  if (it.kind == ItemKind::Done) {
    p->outstanding--;
    call_resolve(it.obj);
    return nullptr;
  }
  auto* r = reinterpret_cast<ThreadRequest*>(it.obj);
  if (r->kind == RequestKind::Sync) return request_run_sync(r);
  start_async_request(p, r);
  return nullptr;
}

// The loop died (its weakref fired): nothing can be delivered any more.
PyObject* pool_loop_died(PyObject* self_obj, PyObject* /*ref*/) {
  auto* p = reinterpret_cast<WorkerPool*>(self_obj);
  Py_INCREF(p);
  forget(p);
  p->loop = nullptr;
  p->loop_gone = true;
  // No waiting and no Thread.join() here: a weakref callback runs wherever
  // the loop happens to be freed, which may be the garbage collector inside
  // threading's own bookkeeping (a join there deadlocks on its lock).
  pool_close(p, false);
  pool_discard(p);
  Py_DECREF(p);
  Py_RETURN_NONE;
}

PyMethodDef drain_def = {"_drain", pool_drain, METH_NOARGS, nullptr};
PyMethodDef loop_died_def = {"_loop_died", pool_loop_died, METH_O, nullptr};

WorkerPool* new_asyncio_pool(PyObject* loop) {
  WorkerPool* p = pool_new(false);
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

// Joins the threads of workers that have left (their exit is imminent).
void join_exited(WorkerPool* p) {
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

}  // namespace

PyObject* run_finished_error() {
  if (TG.RunFinishedError) return PyObject_CallNoArgs(TG.RunFinishedError);
  return PyObject_CallFunction(PyExc_RuntimeError, "s", "The event loop has already finished");
}

bool pool_loop_finished(WorkerPool* p) {
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

WorkerPool* pool_new(bool is_trio) {
  auto* p = PyObject_GC_New(WorkerPool, WorkerPoolType);
  if (!p) return nullptr;
  p->ioc = new boost::asio::io_context(BOOST_ASIO_CONCURRENCY_HINT_SAFE);
  p->guard = new std::optional<WorkGuard>(boost::asio::make_work_guard(*p->ioc));
  p->mu = new std::mutex();
  p->idle = p->queued = p->threads = p->starting = 0;
  p->idle_timeout = settings.idle_timeout;
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

WorkerPool* pool_for_loop(PyObject* loop) {
  if (loop == tls_loop && tls_epoch == g_pools_epoch) return tls_pool;
  WorkerPool* p;
  auto it = g_pools.find(loop);
  if (it != g_pools.end() && !it->second->closing) {
    p = it->second;
  } else {
    if (it != g_pools.end()) {
      WorkerPool* old = it->second;
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

int pool_submit(WorkerPool* p, PyObject* call) {
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
    // A worker still starting will take a queued job as surely as an idle
    // one: counting it keeps a burst of submits, while a new thread starts,
    // from starting more threads than there are jobs.
    spawn = p->queued > p->idle + p->starting;
    if (spawn) {
      p->threads++;
      p->starting++;
    }
  }
  if (spawn && spawn_worker(p) < 0) {
    std::lock_guard<std::mutex> lk(*p->mu);
    p->queued--;
    p->threads--;
    p->starting--;
    return -1;
  }
  Py_INCREF(call);
  p->outstanding++;
  post_job(p, call);
  return 0;
}

bool pool_push(WorkerPool* p, ItemKind kind, PyObject* obj) {
  if (p->loop_gone) {
    drop_item(p, kind, obj);
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
void pool_wakeup(WorkerPool* p) {
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
    pool_discard(p);
    return;
  }
  // Anything else (say, MemoryError): report it and let the next item try
  // again.
  PyErr_WriteUnraisable(p->drain_cb);
  std::lock_guard<std::mutex> lk(*p->cmu);
  p->signaled = false;
}

PyObject* pool_drain(PyObject* self_obj, PyObject* /*unused*/) {
  auto* p = reinterpret_cast<WorkerPool*>(self_obj);
  Py_INCREF(p);
  // A drain that finds nothing (the queue was taken by an earlier one, or
  // dropped because the loop is gone) is harmless.
  std::vector<Item> items = take_items(p);
  // The first SystemExit or the like that a from_thread.run_sync function
  // raised: re-raised on asyncio once the whole batch is handled, so no other
  // item is lost. (Trio hands it to the worker only, as Trio itself does.)
  PyObject* escaping = nullptr;
  for (Item& it : items) {
    PyObject* e = process(p, it);
    if (PyErr_Occurred()) PyErr_WriteUnraisable(self_obj);
    if (e && !escaping && !p->is_trio)
      escaping = e;
    else
      Py_XDECREF(e);
    Py_DECREF(it.obj);
  }
  Py_DECREF(p);
  if (escaping) {
    raise_exception(escaping);
    return nullptr;
  }
  Py_RETURN_NONE;
}

void pool_discard(WorkerPool* p) {
  for (Item& it : take_items(p)) drop_item(p, it.kind, it.obj);
}

int pool_close(WorkerPool* p, bool wait) {
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
          p->exit_cv->wait_for(lk, std::chrono::milliseconds(tunables::kPoolCloseWaitMs),
                               [p, busy] { return p->threads <= busy; });
        }
      Py_END_ALLOW_THREADS
    }
  }
  if (wait) join_exited(p);
  return 0;
}

int pool_close_for_loop(PyObject* loop) {
  auto it = g_pools.find(loop);
  if (it == g_pools.end()) return 0;
  WorkerPool* p = it->second;
  Py_INCREF(p);
  int rc = pool_close(p);
  Py_DECREF(p);
  return rc;
}

void pool_close_idle() {
  std::vector<WorkerPool*> pools;
  for (auto& kv : g_pools) {
    Py_INCREF(kv.second);
    pools.push_back(kv.second);
  }
  PyObject* s_is_running = PyUnicode_InternFromString("is_running");
  for (WorkerPool* p : pools) {
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
}

}  // namespace anyio::threads
