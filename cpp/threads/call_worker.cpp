// ThreadCall seen from the worker thread that runs it: running the job, and
// the module functions a job calls (from_thread.run / run_sync through
// worker_request, from_thread.check_cancelled, the thread's event loop token).
#include "introspect/task_tree.hpp"
#include "threads/thread_call.hpp"

namespace anyio {
PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id);
}

namespace anyio::threads {

namespace {

thread_local PyObject* tls_call = nullptr;  // borrowed: the job this worker runs

// NoEventLoopError with a message of its own (raise_no_event_loop's says no
// loop runs at all).
PyObject* no_worker_error(const char* msg) {
  if (const AnyioExceptions* exc = anyio_exceptions()) PyErr_SetString(exc->NoEventLoopError, msg);
  return nullptr;
}

// Raises trio.Cancelled in a worker thread whose Trio caller abandoned it.
PyObject* raise_trio_cancelled() {
  const TrioLowlevel* trio_ll = trio();
  if (!trio_ll) return nullptr;
  // Trio's Cancelled has no public constructor; _create is how Trio makes one.
  PyObject* e = PyObject_CallMethod(trio_ll->Cancelled, "_create", nullptr);
  if (!e) return nullptr;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e)), e);
  Py_DECREF(e);
  return nullptr;
}

constexpr const char kNotWorker[] =
    "Not running inside an AnyIO worker thread, and no event loop token was provided";

// worker_request(is_async, func, args): from a worker thread, run func(*args)
// on the event loop (in a copy of this thread's context) and wait for it.
PyObject* fn_worker_request(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 3 || nargs > 4 || !PyTuple_Check(args[2]))
    return raise(PyExc_TypeError, "worker_request(is_async, func, args, context=None)");
  PyObject* call = tls_call;
  if (!call) return no_worker_error(kNotWorker);
  int is_async = PyObject_IsTrue(args[0]);
  if (is_async < 0) return nullptr;
  ThreadCall* c = as_call(call);
  PyObject* ctx = nargs == 4 && args[3] != Py_None ? Py_NewRef(args[3]) : PyContext_CopyCurrent();
  if (!ctx) return nullptr;
  PyObject* req = request_new(is_async ? RequestKind::Async : RequestKind::Sync, args[1], args[2], ctx, call);
  Py_DECREF(ctx);
  if (!req) return nullptr;
  Py_INCREF(req);
  bool wake = pool_push(c->pool, ItemKind::Request, req);
  PyObject* r = request_wait(reinterpret_cast<ThreadRequest*>(req), c->pool, wake);
  Py_DECREF(req);
  return r;
}

PyObject* fn_current_worker_call(PyObject*, PyObject*) { return Py_NewRef(tls_call ? tls_call : Py_None); }

// The EventLoopToken of the loop this worker thread runs a job for; raises
// AttributeError outside a job (what reading an unset thread-local would).
PyObject* fn_current_worker_token(PyObject*, PyObject*) {
  ThreadCall* c = tls_call ? as_call(tls_call) : nullptr;
  if (!c || !c->pool) return raise(PyExc_AttributeError, "current_token");
  if (!c->token) {
    PyObject* mk = ANYIO_REQUIRE_HOOK(make_worker_token);
    if (!mk) return nullptr;
    c->token = PyObject_CallOneArg(mk, reinterpret_cast<PyObject*>(c->pool));
    if (!c->token) return nullptr;
  }
  return Py_NewRef(c->token);
}

// check_cancelled() for asyncio workers: reads the host task's cancel state
// directly (the GIL makes that safe). Returns True when the caller must ask
// the host task instead (Trio, not abandoned).
PyObject* fn_worker_check_cancelled(PyObject*, PyObject*) {
  PyObject* call = tls_call;
  if (!call) return no_worker_error("This function can only be called inside an AnyIO worker thread");
  ThreadCall* c = as_call(call);
  if (c->status == JobStatus::Abandoned || c->cancelled) {
    return c->pool && c->pool->is_trio ? raise_trio_cancelled() : raise_cancelled(c);
  }
  if (c->pool && c->pool->is_trio) return PyBool_FromLong(!c->abandon);
  if (c->host) {
    TaskState* t = c->host;
    CancelScope* origin = effective_cancel_from(t->scope ? t->scope : t->root);
    if (origin) {
      set_scope_cancelled_error(origin);
      return nullptr;
    }
  }
  Py_RETURN_FALSE;
}

PyMethodDef module_fns[] = {
    {"worker_request", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_worker_request)),
     METH_FASTCALL, "From a worker thread: run func(*args) in the event loop thread and wait for it."},
    {"current_worker_call", fn_current_worker_call, METH_NOARGS,
     "The ThreadCall this worker thread is running, or None."},
    {"worker_check_cancelled", fn_worker_check_cancelled, METH_NOARGS, nullptr},
    {"current_worker_token", fn_current_worker_token, METH_NOARGS,
     "The EventLoopToken of the job this worker thread runs (AttributeError outside one)."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

bool call_run_job(WorkerPool* p, PyObject* call) {
  ThreadCall* c = as_call(call);
  // An abandoned job still runs: the caller stopped waiting, but the work it
  // asked for (say, setting an event another thread waits on) still happens.
  if (c->status != JobStatus::Abandoned) c->status = JobStatus::Running;
  c->started_at = introspect_clock();  // introspection (task tree); worker thread, GIL held
  PyObject* prev = tls_call;
  // While it is set, anyio._core._eventloop.threadlocals.current_token (which
  // libraries probe to tell anyio worker threads apart) is this call's token.
  tls_call = call;
  PyObject* res = nullptr;
  if (PyContext_Enter(c->ctx) == 0) {
    res = PyObject_Call(c->func, c->args, nullptr);
    PyContext_Exit(c->ctx);
  }
  PyObject* exc = res ? nullptr : fetch_exception();
  tls_call = prev;
  Py_CLEAR(c->token);
  if (c->status == JobStatus::Abandoned) {
    // Nobody waits any more: drop the outcome here, with the GIL we hold.
    Py_XDECREF(res);
    Py_XDECREF(exc);
    p->outstanding--;
    Py_DECREF(call);
    return false;
  }
  c->result = res;
  c->exc = exc;
  c->status = JobStatus::Done;
  // The arguments are not needed any more; let them go on this thread.
  Py_CLEAR(c->func);
  Py_CLEAR(c->args);
  return pool_push(p, ItemKind::Done, call);
}

int call_host_request(PyObject* call, PyObject* request) {
  ThreadCall* c = as_call(call);
  if (c->cancelled || c->status != JobStatus::Running) return 0;
  if (c->waiter) {
    // Trio, as trio.from_thread.run does: the waiting task runs it (so its
    // cancel scopes apply), unless it may abandon the thread.
    if (c->abandon || c->pending) return 0;
    c->pending = Py_NewRef(request);
    if (fire(c, true) < 0) return -1;
    return 1;
  }
  // asyncio: a task of its own (its own identity, so that a to_thread call
  // inside it borrows a limiter token as itself). Cancelling a scope around
  // the waiting call cancels it, as upstream does: a shielded wait hangs it
  // below the caller's innermost scope; a wait that may abandon the thread
  // cancels it when the caller gives up (fut_cancel), unless it is the task
  // that cancelled.
  if (c->astate != AwaitState::Wait || c->resolved) return 0;
  PyObject* mk = ANYIO_REQUIRE_HOOK(run_thread_request);
  if (!mk) return -1;
  PyObject* coro = PyObject_CallOneArg(mk, request);
  if (!coro) return -1;
  PyObject* task = spawn_wrapped(coro, c->abandon ? nullptr : c->scope, Py_None, nullptr, nullptr, 0);
  Py_DECREF(coro);
  if (!task) return -1;
  if (c->abandon) {
    if (!c->req_tasks && !(c->req_tasks = PyList_New(0))) {
      Py_DECREF(task);
      return -1;
    }
    if (PyList_Append(c->req_tasks, task) < 0) {
      Py_DECREF(task);
      return -1;
    }
  }
  Py_DECREF(task);
  return 1;
}

int register_call_worker(PyObject* module) { return PyModule_AddFunctions(module, module_fns); }

}  // namespace anyio::threads
