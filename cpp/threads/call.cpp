// ThreadCall: one to_thread.run_sync call. It is at once
//  - the job a worker thread runs (func, args, the caller's context copy),
//  - on asyncio, the awaitable the caller's task awaits AND the future-like
//    object the task parks on (asyncio's Task accepts any object with the
//    Future protocol: _asyncio_future_blocking, get_loop, add_done_callback,
//    cancel, result), so no asyncio.Future is made per call,
//  - on Trio, the state the Python side (anyio._threads) parks on with
//    wait_task_rescheduled.
// While the caller waits (not abandon_on_cancel) it is shielded: the core sees
// `shielded_yield` and neither delivers cancellation nor cancels us. A worker
// that calls from_thread.run hands the coroutine to the waiting task, which
// runs it unshielded, so the host's cancel scopes apply to it.
#include "common/awaitable.hpp"
#include "cancel/core.hpp"
#include "introspect/task_tree.hpp"
#include "threads/threads.hpp"

namespace anyio {
PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id);
}

namespace anyio::threads {

PyTypeObject* CallType = nullptr;
int register_threads_request(PyObject* module);

namespace {

thread_local PyObject* tls_call = nullptr;  // borrowed: the job this worker runs

enum AState : unsigned char { A_INIT, A_ACQUIRE, A_WAIT, A_FINISHED, A_TRIO };

struct Call {
  PyObject_HEAD
  PyObject* func;
  PyObject* args;
  PyObject* ctx;
  PyObject* result;
  PyObject* exc;
  Pool* pool;          // strong once submitted
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
  unsigned char status;
  unsigned char astate;
  bool abandon;
  bool blocking;
  bool resolved;   // the waiter was woken (result, request or cancel)
  bool cancelled;  // abandoned by cancellation
  bool shielding;  // we set host->shielded_yield
};

inline Call* C(PyObject* o) { return reinterpret_cast<Call*>(o); }

void set_shield(Call* c, bool on) {
  if (!c->host) return;
  if (on != c->shielding) {
    c->host->shielded_yield = on;
    c->shielding = on;
  }
}

int release_token(Call* c) {
  if (!c->borrower) return 0;
  PyObject* borrower = c->borrower;
  c->borrower = nullptr;
  PyObject* r = c->limiter ? call_method1(c->limiter, TG.s_release, borrower) : Py_NewRef(Py_None);
  Py_DECREF(borrower);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

// Releases the token while an exception is being raised, keeping it.
void release_token_keep_error(Call* c) {
  if (!c->borrower) return;
  PyObject* e = fetch_exception();
  if (release_token(c) < 0) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
  if (e) restore_exception(e);
}

void drop_host(Call* c) {
  set_shield(c, false);
  c->host = nullptr;
  Py_CLEAR(c->host_owner);
}

// Marks the job abandoned: a worker that has not started it skips it, one that
// is running it drops the outcome.
void abandon_job(Call* c) {
  if (c->status == JOB_PENDING || c->status == JOB_RUNNING || c->status == JOB_DONE)
    c->status = JOB_ABANDONED;
}

int schedule_callback(Call* c, PyObject* cb, PyObject* ctx) {
  // loop.call_soon(cb, self, context=ctx)
  PyObject* call_soon = PyObject_GetAttr(c->loop, G.s_call_soon);
  if (!call_soon) return -1;
  PyObject* args[] = {cb, reinterpret_cast<PyObject*>(c), ctx ? ctx : Py_None};
  PyObject* kw = PyTuple_Pack(1, TG.s_context);
  PyObject* r = kw ? PyObject_Vectorcall(call_soon, args, 2, kw) : nullptr;
  Py_XDECREF(kw);
  Py_DECREF(call_soon);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

// Wakes whoever waits on this call. `direct`: we are in the loop's own
// wake-up callback with no task running, so the first callback (the waiting
// task's wakeup) runs right here instead of one loop iteration later.
int fire(Call* c, bool direct) {
  c->resolved = true;
  if (c->waiter) {
    PyObject* wake = hook("trio_wake");
    if (!wake) return -1;
    PyObject* r = PyObject_CallOneArg(wake, c->waiter);
    if (!r) return -1;
    Py_DECREF(r);
    return 0;
  }
  PyObject* cb = c->cb;
  PyObject* cb_ctx = c->cb_ctx;
  PyObject* more = c->more_cbs;
  c->cb = c->cb_ctx = c->more_cbs = nullptr;
  int rc = 0;
  if (cb) {
    bool done = false;
    if (direct && cb_ctx && PyContext_Enter(cb_ctx) == 0) {
      PyObject* r = PyObject_CallOneArg(cb, reinterpret_cast<PyObject*>(c));
      PyContext_Exit(cb_ctx);
      if (!r) PyErr_WriteUnraisable(cb);
      Py_XDECREF(r);
      done = true;
    } else if (direct && cb_ctx) {
      PyErr_Clear();
    }
    if (!done && schedule_callback(c, cb, cb_ctx) < 0) rc = -1;
  }
  if (more) {
    Py_ssize_t n = PyList_GET_SIZE(more);
    for (Py_ssize_t i = 0; i < n && rc == 0; ++i) {
      PyObject* pair = PyList_GET_ITEM(more, i);
      PyObject* ctx = PyTuple_GET_ITEM(pair, 1);
      if (schedule_callback(c, PyTuple_GET_ITEM(pair, 0), ctx == Py_None ? nullptr : ctx) < 0) rc = -1;
    }
  }
  Py_XDECREF(cb);
  Py_XDECREF(cb_ctx);
  Py_XDECREF(more);
  return rc;
}

PyObject* cancelled_error(Call* c) {
  return c->cancel_msg ? PyObject_CallOneArg(G.CancelledError, c->cancel_msg)
                       : PyObject_CallNoArgs(G.CancelledError);
}

// --- the awaitable (asyncio) ------------------------------------------------------

PySendResult yield_self(Call* c, PyObject** out) {
  c->astate = A_WAIT;
  c->resolved = false;
  c->blocking = true;
  set_shield(c, !c->abandon);
  *out = Py_NewRef(reinterpret_cast<PyObject*>(c));
  return PYGEN_NEXT;
}

PySendResult fail(PyObject** out) {
  *out = nullptr;
  return PYGEN_ERROR;
}

PySendResult submit_and_park(Call* c, TaskState* t, PyObject** out) {
  if (t) {
    if (!c->abandon) {
      c->host = t;
      c->host_owner = Py_NewRef(t->owner);
    }
    CancelScope* s = t->scope ? t->scope : t->root;
    if (s) c->scope = reinterpret_cast<CancelScope*>(Py_NewRef(reinterpret_cast<PyObject*>(s)));
  }
  if (pool_submit(c->pool, reinterpret_cast<PyObject*>(c)) < 0) {
    drop_host(c);
    release_token_keep_error(c);
    c->astate = A_FINISHED;
    return fail(out);
  }
  return yield_self(c, out);
}

// The job is done and the task was woken: hand over the outcome.
PySendResult finish(Call* c, PyObject** out) {
  c->astate = A_FINISHED;
  drop_host(c);
  if (release_token(c) < 0) return fail(out);
  if (c->exc) {
    PyObject* e = c->exc;
    c->exc = nullptr;
    if (PyObject_TypeCheck(e, reinterpret_cast<PyTypeObject*>(PyExc_StopIteration))) {
      // Raised from here it would read as our own return (Python 3.12+ ends
      // an await on StopIteration): report it as a coroutine would.
      PyObject* re = PyObject_CallFunction(PyExc_RuntimeError, "s", "coroutine raised StopIteration");
      if (!re) {
        Py_DECREF(e);
        return fail(out);
      }
      PyException_SetCause(re, e);  // steals e
      e = re;
    }
    raise_exception(e);
    return fail(out);
  }
  *out = c->result ? c->result : Py_NewRef(Py_None);
  c->result = nullptr;
  return PYGEN_RETURN;
}

// Forwards to `inner`; deals with its end according to the state.
PySendResult after_inner(Call* c, PySendResult r, PyObject** out);

PySendResult after_inner(Call* c, PySendResult r, PyObject** out) {
  if (r == PYGEN_NEXT) return r;
  Py_CLEAR(c->inner);
  switch (c->astate) {
    case A_ACQUIRE: {
      if (r == PYGEN_ERROR) {
        c->astate = A_FINISHED;
        Py_CLEAR(c->borrower);
        return r;
      }
      Py_DECREF(*out);
      if (c->pool->closing) {
        // The loop's pool was closed while we waited for a token (at
        // interpreter exit, say): use the one the loop has now.
        Pool* p = pool_for_loop(c->loop);
        if (!p) {
          c->astate = A_FINISHED;
          release_token_keep_error(c);
          return fail(out);
        }
        Py_SETREF(c->pool, reinterpret_cast<Pool*>(Py_NewRef(reinterpret_cast<PyObject*>(p))));
      }
      TaskState* t = tls_current;
      if (!t) {
        t = current_task_state(false);
        if (!t) PyErr_Clear();
      }
      return submit_and_park(c, t, out);
    }
    default:  // A_TRIO
      c->astate = A_FINISHED;
      return r;
  }
}

PySendResult call_send(PyObject* self, PyObject* arg, PyObject** out) {
  Call* c = C(self);
  switch (c->astate) {
    case A_INIT: {
      PyObject* loop = running_loop();
      if (!loop) {
        if (PyErr_Occurred()) return fail(out);
        // Not asyncio: the Trio driver (Python) parks on this call.
        PyObject* drive = hook("trio_run");
        if (!drive) return fail(out);
        PyObject* coro = PyObject_CallOneArg(drive, self);
        if (!coro) return fail(out);
        c->inner = coro;
        c->astate = A_TRIO;
        return after_inner(c, PyIter_Send(coro, Py_None, out), out);
      }
      TaskState* t = tls_current;
      if (!t) {
        t = current_task_state(false);
        if (!t) PyErr_Clear();
      }
      if (t) {
        CancelScope* origin = effective_cancel(t);
        if (origin) {
          PyObject* e = make_cancelled_error(origin);
          if (e) {
            PyErr_SetObject(G.CancelledError, e);
            Py_DECREF(e);
          }
          c->astate = A_FINISHED;
          return fail(out);
        }
      }
      Pool* p = pool_for_loop(loop);
      if (!p) return fail(out);
      c->pool = reinterpret_cast<Pool*>(Py_NewRef(reinterpret_cast<PyObject*>(p)));
      c->loop = Py_NewRef(loop);
      if (!c->limiter) {
        if (!p->default_limiter) {
          PyObject* mk = hook("new_default_limiter");
          if (!mk) return fail(out);
          p->default_limiter = PyObject_CallNoArgs(mk);
          if (!p->default_limiter) return fail(out);
        }
        c->limiter = Py_NewRef(p->default_limiter);
      }
      // The borrower is the calling task, as for `async with limiter`.
      PyObject* borrower = t && t->task ? Py_NewRef(t->task) : PyObject_CallOneArg(G.current_task, loop);
      if (!borrower) return fail(out);
      if (borrower == Py_None) {
        Py_DECREF(borrower);
        borrower = Py_NewRef(self);
      }
      PyObject* r = call_method1(c->limiter, TG.s_acquire_nowait, borrower);
      if (r) {
        Py_DECREF(r);
        c->borrower = borrower;
        return submit_and_park(c, t, out);
      }
      if (!PyErr_ExceptionMatches(TG.WouldBlock)) {
        Py_DECREF(borrower);
        c->astate = A_FINISHED;
        return fail(out);
      }
      PyErr_Clear();
      PyObject* aw = call_method1(c->limiter, TG.s_acquire, borrower);
      if (!aw) {
        Py_DECREF(borrower);
        return fail(out);
      }
      PyObject* it = nullptr;
      PyTypeObject* tp = Py_TYPE(aw);
      if (PyCoro_CheckExact(aw))
        it = Py_NewRef(aw);
      else if (tp->tp_as_async && tp->tp_as_async->am_await)
        it = tp->tp_as_async->am_await(aw);
      else
        PyErr_SetString(PyExc_TypeError, "limiter.acquire_on_behalf_of() did not return an awaitable");
      Py_DECREF(aw);
      if (!it) {
        Py_DECREF(borrower);
        return fail(out);
      }
      c->borrower = borrower;  // held from the moment the acquire succeeds
      c->inner = it;
      c->astate = A_ACQUIRE;
      return after_inner(c, PyIter_Send(it, Py_None, out), out);
    }
    case A_ACQUIRE:
    case A_TRIO: {
      PySendResult r = PyIter_Send(c->inner, arg, out);
      return after_inner(c, r, out);
    }
    case A_WAIT: {
      set_shield(c, false);
      if (c->cancelled) {
        c->astate = A_FINISHED;
        drop_host(c);
        PyObject* e = cancelled_error(c);
        if (e) {
          PyErr_SetObject(G.CancelledError, e);
          Py_DECREF(e);
        }
        release_token_keep_error(c);
        return fail(out);
      }
      if (c->resolved && c->status == JOB_DONE) return finish(c, out);
      return yield_self(c, out);  // woken by someone else: keep waiting
    }
    default:
      PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited to_thread.run_sync() call");
      return fail(out);
  }
}

PyObject* raise_thrown(PyObject* const* args, Py_ssize_t nargs) {
  PyObject* typ = args[0];
  if (PyExceptionInstance_Check(typ))
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
  else if (nargs > 1 && args[1] != Py_None)
    PyErr_SetObject(typ, args[1]);
  else
    PyErr_SetNone(typ);
  return nullptr;
}

// Turns the outcome of inner.throw() into a send result.
PySendResult throw_result(PyObject* res, PyObject** out) {
  if (res) {
    *out = res;
    return PYGEN_NEXT;
  }
  if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
    PyObject* e = fetch_exception();
    PyObject* v = e ? PyObject_GetAttrString(e, "value") : nullptr;
    Py_XDECREF(e);
    if (!v) return fail(out);
    *out = v;
    return PYGEN_RETURN;
  }
  return fail(out);
}

PyObject* call_throw(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  Call* c = C(self);
  switch (c->astate) {
    case A_ACQUIRE:
    case A_TRIO: {
      PyObject* fwd[4] = {c->inner};
      for (Py_ssize_t i = 0; i < nargs && i < 3; ++i) fwd[i + 1] = args[i];
      PyObject* res = PyObject_VectorcallMethod(G.s_throw, fwd, static_cast<size_t>(nargs + 1), nullptr);
      PyObject* out = nullptr;
      PySendResult r = after_inner(c, throw_result(res, &out), &out);
      return send_result_to_python(r, out);
    }
    case A_WAIT: {
      // Cancelled while waiting (abandoned), or the task was cancelled
      // natively and resumes into the exception: the outcome is dropped.
      c->astate = A_FINISHED;
      if (c->status != JOB_DONE) abandon_job(c);
      drop_host(c);
      raise_thrown(args, nargs);
      release_token_keep_error(c);
      return nullptr;
    }
    default:
      c->astate = A_FINISHED;
      return raise_thrown(args, nargs);
  }
}

PyObject* call_close(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (c->inner) {
    PyObject* inner = c->inner;
    c->inner = nullptr;
    PyObject* r = PyObject_CallMethodNoArgs(inner, G.s_close);
    Py_DECREF(inner);
    if (!r) PyErr_WriteUnraisable(self);
    Py_XDECREF(r);
  }
  if (c->astate != A_FINISHED && c->astate != A_INIT) {
    if (c->status != JOB_DONE) abandon_job(c);
    drop_host(c);
    if (release_token(c) < 0) PyErr_WriteUnraisable(self);
  }
  c->astate = A_FINISHED;
  Py_RETURN_NONE;
}

// --- the Future protocol (what asyncio.Task uses) ---------------------------------

PyObject* fut_get_blocking(PyObject* self, void*) { return PyBool_FromLong(C(self)->blocking); }

int fut_set_blocking(PyObject* self, PyObject* v, void*) {
  int b = v ? PyObject_IsTrue(v) : 0;
  if (b < 0) return -1;
  C(self)->blocking = b;
  return 0;
}

PyObject* fut_get_loop(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (!c->loop) return raise(PyExc_RuntimeError, "this call is not bound to an event loop");
  return Py_NewRef(c->loop);
}

PyObject* fut_add_done_callback(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Call* c = C(self);
  if (nargs != 1) return raise(PyExc_TypeError, "add_done_callback() takes exactly one positional argument");
  PyObject* ctx = nullptr;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "context") != 0)
        return raise(PyExc_TypeError, "add_done_callback() got an unexpected keyword argument");
      ctx = args[nargs + i];
    }
  }
  if (ctx == Py_None) ctx = nullptr;
  PyObject* owned_ctx = ctx ? Py_NewRef(ctx) : PyContext_CopyCurrent();
  if (!owned_ctx) return nullptr;
  if (c->resolved || c->cancelled) {
    int rc = schedule_callback(c, args[0], owned_ctx);
    Py_DECREF(owned_ctx);
    if (rc < 0) return nullptr;
    Py_RETURN_NONE;
  }
  if (!c->cb) {
    c->cb = Py_NewRef(args[0]);
    c->cb_ctx = owned_ctx;
    Py_RETURN_NONE;
  }
  if (!c->more_cbs && !(c->more_cbs = PyList_New(0))) {
    Py_DECREF(owned_ctx);
    return nullptr;
  }
  PyObject* pair = PyTuple_Pack(2, args[0], owned_ctx);
  Py_DECREF(owned_ctx);
  if (!pair) return nullptr;
  int rc = PyList_Append(c->more_cbs, pair);
  Py_DECREF(pair);
  if (rc < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* fut_remove_done_callback(PyObject* self, PyObject* fn) {
  Call* c = C(self);
  Py_ssize_t removed = 0;
  if (c->more_cbs) {
    PyObject* keep = PyList_New(0);
    if (!keep) return nullptr;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(c->more_cbs); ++i) {
      PyObject* pair = PyList_GET_ITEM(c->more_cbs, i);
      int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), fn, Py_EQ);
      if (eq < 0) {
        Py_DECREF(keep);
        return nullptr;
      }
      if (eq)
        removed++;
      else if (PyList_Append(keep, pair) < 0) {
        Py_DECREF(keep);
        return nullptr;
      }
    }
    Py_SETREF(c->more_cbs, keep);
  }
  if (c->cb) {
    int eq = PyObject_RichCompareBool(c->cb, fn, Py_EQ);
    if (eq < 0) return nullptr;
    if (eq) {
      removed++;
      Py_CLEAR(c->cb);
      Py_CLEAR(c->cb_ctx);
    }
  }
  return PyLong_FromSsize_t(removed);
}

// A cancel scope made the caller give up the thread: its from_thread.run
// tasks still running are cancelled with the same message, except the task
// doing the cancelling.
int cancel_request_tasks(Call* c, PyObject* msg) {
  PyObject* tasks = c->req_tasks;
  c->req_tasks = nullptr;
  int rc = 0;
  if (c->scope && effective_cancel_from(c->scope)) {
    PyObject* current = PyObject_CallOneArg(G.current_task, c->loop);
    if (!current) rc = -1;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(tasks); ++i) {
      PyObject* task = PyList_GET_ITEM(tasks, i);
      if (task == current) continue;
      PyObject* r = msg ? call_method1(task, G.s_cancel, msg) : call_method0(task, G.s_cancel);
      if (!r) rc = -1;
      Py_XDECREF(r);
    }
    Py_XDECREF(current);
  }
  Py_DECREF(tasks);
  return rc;
}

// cancel(msg=None). anyio cancel scopes never get here while the caller is
// shielded (the core sees `shielded_yield`); what does is a native
// Task.cancel() (asyncio.wait_for, TaskGroup, ...), which, as with a plain
// future, ends the wait at once and drops the thread's eventual outcome.
PyObject* fut_cancel(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Call* c = C(self);
  PyObject* msg = nargs > 0 ? args[0] : nullptr;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) msg = args[nargs + i];
  }
  if (c->astate != A_WAIT || c->resolved || c->cancelled) Py_RETURN_FALSE;
  abandon_job(c);
  c->cancelled = true;
  if (msg && msg != Py_None) c->cancel_msg = Py_NewRef(msg);
  if (c->req_tasks && cancel_request_tasks(c, msg) < 0) return nullptr;
  if (fire(c, false) < 0) return nullptr;
  Py_RETURN_TRUE;
}

PyObject* fut_done(PyObject* self, PyObject*) {
  Call* c = C(self);
  return PyBool_FromLong(c->resolved || c->cancelled || c->astate == A_FINISHED);
}

PyObject* fut_cancelled(PyObject* self, PyObject*) { return PyBool_FromLong(C(self)->cancelled); }

PyObject* fut_result(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (c->cancelled) {
    PyObject* e = cancelled_error(c);
    if (e) {
      PyErr_SetObject(G.CancelledError, e);
      Py_DECREF(e);
    }
    return nullptr;
  }
  if (!c->resolved && c->astate != A_FINISHED) return raise(G.InvalidStateError, "Result is not ready.");
  // The outcome itself is handed over by send(); the task only needs to know
  // it may resume.
  Py_RETURN_NONE;
}

PyObject* fut_exception(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (c->cancelled) return fut_result(self, nullptr);
  if (!c->resolved && c->astate != A_FINISHED) return raise(G.InvalidStateError, "Exception is not set.");
  Py_RETURN_NONE;
}

// --- Trio / Python-side driver API ------------------------------------------------------

PyObject* py_submit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Call* c = C(self);
  if (nargs != 2 || Py_TYPE(args[0]) != PoolType) return raise(PyExc_TypeError, "submit(pool, waiter)");
  if (c->pool) return raise(PyExc_RuntimeError, "already submitted");
  c->pool = reinterpret_cast<Pool*>(Py_NewRef(args[0]));
  c->waiter = args[1] == Py_None ? nullptr : Py_NewRef(args[1]);
  if (pool_submit(c->pool, self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* py_take_request(PyObject* self, PyObject*) {
  Call* c = C(self);
  c->resolved = false;
  if (!c->pending) Py_RETURN_NONE;
  PyObject* r = c->pending;
  c->pending = nullptr;
  return r;
}

PyObject* py_outcome(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (c->status != JOB_DONE) return raise(PyExc_RuntimeError, "the job has not finished");
  Py_CLEAR(c->waiter);
  if (c->exc) {
    PyObject* e = c->exc;
    c->exc = nullptr;
    raise_exception(e);
    return nullptr;
  }
  PyObject* r = c->result ? c->result : Py_NewRef(Py_None);
  c->result = nullptr;
  return r;
}

PyObject* py_abandon(PyObject* self, PyObject*) {
  Call* c = C(self);
  if (c->status == JOB_DONE && c->resolved) Py_RETURN_FALSE;
  abandon_job(c);
  c->cancelled = true;
  Py_CLEAR(c->waiter);
  Py_RETURN_TRUE;
}

PyObject* py_get_done(PyObject* self, void*) { return PyBool_FromLong(C(self)->status == JOB_DONE); }
PyObject* py_get_abandon(PyObject* self, void*) { return PyBool_FromLong(C(self)->abandon); }
PyObject* py_get_status(PyObject* self, void*) { return PyLong_FromLong(C(self)->status); }

PyObject* py_get_backend(PyObject* self, void*) {
  Call* c = C(self);
  if (!c->pool) Py_RETURN_NONE;
  return PyUnicode_FromString(c->pool->is_trio ? "trio" : "asyncio");
}

PyObject* py_get_limiter(PyObject* self, void*) {
  Call* c = C(self);
  return Py_NewRef(c->limiter ? c->limiter : Py_None);
}

PyObject* call_repr(PyObject* self) {
  static const char* names[] = {"pending", "running", "finished", "abandoned"};
  return PyUnicode_FromFormat("<ThreadCall %s func=%R>", names[C(self)->status],
                              C(self)->func ? C(self)->func : Py_None);
}

int call_traverse(Call* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->func);
  Py_VISIT(self->args);
  Py_VISIT(self->ctx);
  Py_VISIT(self->result);
  Py_VISIT(self->exc);
  Py_VISIT(reinterpret_cast<PyObject*>(self->pool));
  Py_VISIT(self->limiter);
  Py_VISIT(self->borrower);
  Py_VISIT(self->loop);
  Py_VISIT(self->cb);
  Py_VISIT(self->cb_ctx);
  Py_VISIT(self->more_cbs);
  Py_VISIT(self->cancel_msg);
  Py_VISIT(self->host_owner);
  Py_VISIT(self->inner);
  Py_VISIT(reinterpret_cast<PyObject*>(self->scope));
  Py_VISIT(self->req_tasks);
  Py_VISIT(self->pending);
  Py_VISIT(self->waiter);
  Py_VISIT(self->token);
  return 0;
}

int call_clear(Call* self) {
  drop_host(self);
  Py_CLEAR(self->func);
  Py_CLEAR(self->args);
  Py_CLEAR(self->ctx);
  Py_CLEAR(self->result);
  Py_CLEAR(self->exc);
  Py_CLEAR(self->pool);
  Py_CLEAR(self->limiter);
  Py_CLEAR(self->borrower);
  Py_CLEAR(self->loop);
  Py_CLEAR(self->cb);
  Py_CLEAR(self->cb_ctx);
  Py_CLEAR(self->more_cbs);
  Py_CLEAR(self->cancel_msg);
  Py_CLEAR(self->inner);
  Py_CLEAR(self->scope);
  Py_CLEAR(self->req_tasks);
  Py_CLEAR(self->pending);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->token);
  return 0;
}

void call_dealloc(Call* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  if (self->borrower && self->limiter) {
    // Never lose a token: an awaitable dropped mid-wait gives it back.
    PyObject* r = call_method1(self->limiter, TG.s_release, self->borrower);
    if (!r) PyErr_WriteUnraisable(self->limiter);
    Py_XDECREF(r);
  }
  call_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef call_methods[] = {
    {"send", send_method_via_send<call_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(call_throw)), METH_FASTCALL,
     nullptr},
    {"close", call_close, METH_NOARGS, nullptr},
    {"get_loop", fut_get_loop, METH_NOARGS, nullptr},
    {"add_done_callback", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fut_add_done_callback)),
     METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"remove_done_callback", fut_remove_done_callback, METH_O, nullptr},
    {"cancel", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fut_cancel)),
     METH_FASTCALL | METH_KEYWORDS, nullptr},
    {"done", fut_done, METH_NOARGS, nullptr},
    {"cancelled", fut_cancelled, METH_NOARGS, nullptr},
    {"result", fut_result, METH_NOARGS, nullptr},
    {"exception", fut_exception, METH_NOARGS, nullptr},
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(py_submit)), METH_FASTCALL,
     "Trio driver: queue the job on `pool`; `waiter` (a Trio task) is rescheduled on news."},
    {"take_request", py_take_request, METH_NOARGS, "Trio driver: the request the worker waits on, or None."},
    {"outcome", py_outcome, METH_NOARGS, "Trio driver: return or raise the job's outcome."},
    {"abandon", py_abandon, METH_NOARGS, "Trio driver: drop the job's eventual outcome."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef call_getset[] = {
    {"_asyncio_future_blocking", fut_get_blocking, fut_set_blocking, nullptr, nullptr},
    {"finished", py_get_done, nullptr, nullptr, nullptr},
    {"abandon_on_cancel", py_get_abandon, nullptr, nullptr, nullptr},
    {"status", py_get_status, nullptr, nullptr, nullptr},
    {"limiter", py_get_limiter, nullptr, nullptr, nullptr},
    {"backend", py_get_backend, nullptr, "The backend whose pool runs the call.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef call_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Call, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot call_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(call_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<call_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(call_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(call_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(call_clear)},
    {Py_tp_methods, call_methods},
    {Py_tp_getset, call_getset},
    {Py_tp_members, call_members},
    {Py_tp_repr, reinterpret_cast<void*>(call_repr)},
    {0, nullptr},
};

PyType_Spec call_spec = {
    "anyio._cpp.ThreadCall",
    sizeof(Call),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    call_slots,
};

// thread_call(func, args, abandon_on_cancel, limiter) -> awaitable ThreadCall
PyObject* fn_thread_call(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4) return raise(PyExc_TypeError, "thread_call(func, args, abandon_on_cancel, limiter)");
  if (!PyTuple_Check(args[1])) return raise(PyExc_TypeError, "args must be a tuple");
  int abandon = PyObject_IsTrue(args[2]);
  if (abandon < 0) return nullptr;
  PyObject* ctx = PyContext_CopyCurrent();
  if (!ctx) return nullptr;
  auto* c = PyObject_GC_New(Call, CallType);
  if (!c) {
    Py_DECREF(ctx);
    return nullptr;
  }
  c->func = Py_NewRef(args[0]);
  c->args = Py_NewRef(args[1]);
  c->ctx = ctx;
  c->result = c->exc = nullptr;
  c->pool = nullptr;
  c->limiter = args[3] == Py_None ? nullptr : Py_NewRef(args[3]);
  c->borrower = c->loop = c->cb = c->cb_ctx = c->more_cbs = c->cancel_msg = nullptr;
  c->host_owner = nullptr;
  c->host = nullptr;
  c->inner = c->pending = c->waiter = c->token = nullptr;
  c->scope = nullptr;
  c->req_tasks = nullptr;
  c->weakreflist = nullptr;
  c->status = JOB_PENDING;
  c->astate = A_INIT;
  c->abandon = abandon;
  c->blocking = false;
  c->resolved = c->cancelled = c->shielding = false;
  PyObject_GC_Track(c);
  return reinterpret_cast<PyObject*>(c);
}

// --- worker-thread side -------------------------------------------------------------

PyObject* no_worker_error(const char* msg) {
  PyErr_SetString(TG.NoEventLoopError, msg);
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
  Call* c = C(call);
  PyObject* ctx = nargs == 4 && args[3] != Py_None ? Py_NewRef(args[3]) : PyContext_CopyCurrent();
  if (!ctx) return nullptr;
  PyObject* req = request_new(is_async ? REQ_ASYNC : REQ_SYNC, args[1], args[2], ctx, call);
  Py_DECREF(ctx);
  if (!req) return nullptr;
  Py_INCREF(req);
  bool wake = pool_push(c->pool, ITEM_REQUEST, req);
  PyObject* r = request_wait(reinterpret_cast<Request*>(req), c->pool, wake);
  Py_DECREF(req);
  return r;
}

PyObject* fn_current_worker_call(PyObject*, PyObject*) { return Py_NewRef(tls_call ? tls_call : Py_None); }

// The EventLoopToken of the loop this worker thread runs a job for; raises
// AttributeError outside a job (what reading an unset thread-local would).
PyObject* fn_current_worker_token(PyObject*, PyObject*) {
  Call* c = tls_call ? C(tls_call) : nullptr;
  if (!c || !c->pool) return raise(PyExc_AttributeError, "current_token");
  if (!c->token) {
    PyObject* mk = hook("make_worker_token");
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
  Call* c = C(call);
  if (c->status == JOB_ABANDONED || c->cancelled) {
    if (c->pool && c->pool->is_trio) {
      PyObject* h = hook("trio_raise_cancelled");
      if (!h) return nullptr;
      return PyObject_CallNoArgs(h);
    }
    PyObject* e = cancelled_error(c);
    if (e) {
      PyErr_SetObject(G.CancelledError, e);
      Py_DECREF(e);
    }
    return nullptr;
  }
  if (c->pool && c->pool->is_trio) return PyBool_FromLong(!c->abandon);
  if (c->host) {
    TaskState* t = c->host;
    CancelScope* origin = effective_cancel_from(t->scope ? t->scope : t->root);
    if (origin) {
      PyObject* e = make_cancelled_error(origin);
      if (e) {
        PyErr_SetObject(G.CancelledError, e);
        Py_DECREF(e);
      }
      return nullptr;
    }
  }
  Py_RETURN_FALSE;
}

PyMethodDef module_fns[] = {
    {"thread_call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_thread_call)),
     METH_FASTCALL,
     "thread_call(func, args, abandon_on_cancel, limiter)\n--\n\nAn awaitable that runs func(*args) in a "
     "worker "
     "thread of the current event loop."},
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

// introspection (task tree): what a ThreadCall's waiter waits on, read at snapshot time only.
PyObject* call_waits_on(PyObject* obj) {
  if (!CallType || Py_TYPE(obj) != CallType) Py_RETURN_NONE;
  Call* c = C(obj);
  const char* status = c->status == JOB_PENDING   ? "pending"
                       : c->status == JOB_RUNNING ? "running"
                       : c->status == JOB_DONE    ? "done"
                                                  : "abandoned";
  PyObject* func = c->func ? c->func : Py_None;
  PyObject* limiter = c->limiter ? c->limiter : Py_None;
  PyObject* acquiring = c->astate == A_ACQUIRE ? Py_True : Py_False;
  // started_at is written by the worker with the GIL held, before the job runs.
  if (c->status != JOB_RUNNING)
    return Py_BuildValue("(sOsOOO)", "thread", func, status, limiter, acquiring, Py_None);
  return Py_BuildValue("(sOsOOd)", "thread", func, status, limiter, acquiring,
                       introspect_clock() - c->started_at);
}

bool call_run_job(Pool* p, PyObject* call) {
  Call* c = C(call);
  // An abandoned job still runs: the caller stopped waiting, but the work it
  // asked for (say, setting an event another thread waits on) still happens.
  if (c->status != JOB_ABANDONED) c->status = JOB_RUNNING;
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
  if (c->status == JOB_ABANDONED) {
    // Nobody waits any more: drop the outcome here, with the GIL we hold.
    Py_XDECREF(res);
    Py_XDECREF(exc);
    p->outstanding--;
    Py_DECREF(call);
    return false;
  }
  c->result = res;
  c->exc = exc;
  c->status = JOB_DONE;
  // The arguments are not needed any more; let them go on this thread.
  Py_CLEAR(c->func);
  Py_CLEAR(c->args);
  return pool_push(p, ITEM_DONE, call);
}

void call_resolve(PyObject* call) {
  Call* c = C(call);
  if (c->cancelled || c->status != JOB_DONE) return;
  if (fire(c, true) < 0) PyErr_WriteUnraisable(call);
}

int call_host_request(PyObject* call, PyObject* request) {
  Call* c = C(call);
  if (c->cancelled || c->status != JOB_RUNNING) return 0;
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
  if (c->astate != A_WAIT || c->resolved) return 0;
  PyObject* mk = hook("run_request");
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

PyObject* current_worker_call() { return tls_call; }

int register_threads_call(PyObject* module) {
  CallType = add_type(module, &call_spec);
  if (!CallType) return -1;
  if (PyModule_AddFunctions(module, module_fns) < 0) return -1;
  return 0;
}

int register_threads(PyObject* module) {
  if (register_threads_pool(module) < 0) return -1;
  if (register_threads_request(module) < 0) return -1;
  return register_threads_call(module);
}

}  // namespace anyio::threads

namespace anyio {
int register_threads(PyObject* module) { return threads::register_threads(module); }
}  // namespace anyio
