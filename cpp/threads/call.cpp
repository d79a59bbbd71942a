// ThreadCall as an awaitable: the state machine of `await thread_call(...)`
// (see thread_call.hpp). On asyncio it takes a limiter token, submits the job
// and parks the task on itself; on Trio it forwards to the Python driver.
#include "common/awaitable.hpp"
#include "threads/thread_call.hpp"

namespace anyio::threads {

int release_token(ThreadCall* c) {
  if (!c->borrower) return 0;
  PyObject* borrower = c->borrower;
  c->borrower = nullptr;
  PyObject* r = c->limiter ? call_method1(c->limiter, TG.s_release, borrower) : Py_NewRef(Py_None);
  Py_DECREF(borrower);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

void release_token_keep_error(ThreadCall* c) {
  if (!c->borrower) return;
  PyObject* e = fetch_exception();
  if (release_token(c) < 0) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(c));
  if (e) restore_exception(e);
}

PyObject* raise_cancelled(ThreadCall* c) {
  PyObject* e = c->cancel_msg ? PyObject_CallOneArg(G.CancelledError, c->cancel_msg)
                              : PyObject_CallNoArgs(G.CancelledError);
  if (e) {
    PyErr_SetObject(G.CancelledError, e);
    Py_DECREF(e);
  }
  return nullptr;
}

namespace {

PySendResult fail(PyObject** out) {
  *out = nullptr;
  return PYGEN_ERROR;
}

PySendResult yield_self(ThreadCall* c, PyObject** out) {
  c->astate = AwaitState::Wait;
  c->resolved = false;
  c->blocking = true;
  set_shield(c, !c->abandon);
  *out = Py_NewRef(reinterpret_cast<PyObject*>(c));
  return PYGEN_NEXT;
}

PySendResult submit_and_park(ThreadCall* c, TaskState* t, PyObject** out) {
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
    c->astate = AwaitState::Finished;
    return fail(out);
  }
  return yield_self(c, out);
}

// The job is done and the task was woken: hand over the outcome.
PySendResult finish(ThreadCall* c, PyObject** out) {
  c->astate = AwaitState::Finished;
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

// Deals with the end of `inner` (the limiter's acquire or the Trio driver).
PySendResult after_inner(ThreadCall* c, PySendResult r, PyObject** out) {
  if (r == PYGEN_NEXT) return r;
  Py_CLEAR(c->inner);
  if (c->astate != AwaitState::Acquire) {  // the Trio driver returned or raised
    c->astate = AwaitState::Finished;
    return r;
  }
  if (r == PYGEN_ERROR) {
    c->astate = AwaitState::Finished;
    Py_CLEAR(c->borrower);
    return r;
  }
  Py_DECREF(*out);
  if (c->pool->closing) {
    // The loop's pool was closed while we waited for a token (at interpreter
    // exit, say): use the one the loop has now.
    WorkerPool* p = pool_for_loop(c->loop);
    if (!p) {
      c->astate = AwaitState::Finished;
      release_token_keep_error(c);
      return fail(out);
    }
    Py_SETREF(c->pool, reinterpret_cast<WorkerPool*>(Py_NewRef(reinterpret_cast<PyObject*>(p))));
  }
  return submit_and_park(c, task_state_if_any(), out);
}

// --- the first send, step by step --------------------------------------------------

// On Trio: the Trio driver (anyio._threads_trio) takes over and parks the
// task on the call.
PySendResult start_on_trio(ThreadCall* c, PyObject** out) {
  PyObject* drive = ANYIO_REQUIRE_HOOK(trio_thread_call);
  if (!drive) return fail(out);
  PyObject* coro = PyObject_CallOneArg(drive, reinterpret_cast<PyObject*>(c));
  if (!coro) return fail(out);
  c->inner = coro;
  c->astate = AwaitState::Trio;
  return after_inner(c, PyIter_Send(coro, Py_None, out), out);
}

// Binds the call to the loop's pool and to its limiter (the pool's default
// one unless the caller gave one).
int bind_to_pool(ThreadCall* c, PyObject* loop) {
  WorkerPool* p = pool_for_loop(loop);
  if (!p) return -1;
  c->pool = reinterpret_cast<WorkerPool*>(Py_NewRef(reinterpret_cast<PyObject*>(p)));
  c->loop = Py_NewRef(loop);
  if (c->limiter) return 0;
  if (!p->default_limiter) {
    PyObject* mk = ANYIO_REQUIRE_HOOK(new_default_thread_limiter);
    if (!mk) return -1;
    p->default_limiter = PyObject_CallNoArgs(mk);
    if (!p->default_limiter) return -1;
  }
  c->limiter = Py_NewRef(p->default_limiter);
  return 0;
}

// Who borrows the token: the calling task, as for `async with limiter`; a
// call awaited outside any task borrows it as itself. New reference.
PyObject* new_borrower(ThreadCall* c, TaskState* t, PyObject* loop) {
  PyObject* borrower = t && t->task ? Py_NewRef(t->task) : PyObject_CallOneArg(G.current_task, loop);
  if (borrower == Py_None) {
    Py_DECREF(borrower);
    borrower = Py_NewRef(reinterpret_cast<PyObject*>(c));
  }
  return borrower;
}

// Takes a limiter token for `borrower` (stolen): at once if one is free (then
// submits), otherwise by awaiting the limiter's acquire as `inner`.
PySendResult acquire_token(ThreadCall* c, TaskState* t, PyObject* borrower, PyObject** out) {
  const AnyioExceptions* exc = anyio_exceptions();  // before an error is set: it may import
  if (!exc) {
    Py_DECREF(borrower);
    return fail(out);
  }
  PyObject* r = call_method1(c->limiter, TG.s_acquire_nowait, borrower);
  if (r) {
    Py_DECREF(r);
    c->borrower = borrower;
    return submit_and_park(c, t, out);
  }
  if (!PyErr_ExceptionMatches(exc->WouldBlock)) {
    Py_DECREF(borrower);
    c->astate = AwaitState::Finished;
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
  c->astate = AwaitState::Acquire;
  return after_inner(c, PyIter_Send(it, Py_None, out), out);
}

PySendResult start(ThreadCall* c, PyObject** out) {
  PyObject* loop = running_loop();
  if (!loop) {
    if (PyErr_Occurred()) return fail(out);
    switch (current_backend()) {
      case Backend::Trio:
        return start_on_trio(c, out);
      case Backend::None:
        raise_no_event_loop();
        return fail(out);
      default:
        return fail(out);
    }
  }
  TaskState* t = task_state_if_any();
  // A caller whose cancel scope is already cancelled does not start the job.
  if (raise_if_cancelled(t)) {
    c->astate = AwaitState::Finished;
    return fail(out);
  }
  if (bind_to_pool(c, loop) < 0) return fail(out);
  PyObject* borrower = new_borrower(c, t, loop);
  if (!borrower) return fail(out);
  return acquire_token(c, t, borrower, out);
}

// Woken while parked on the call (asyncio).
PySendResult resume(ThreadCall* c, PyObject** out) {
  set_shield(c, false);
  if (c->cancelled) {
    c->astate = AwaitState::Finished;
    drop_host(c);
    raise_cancelled(c);
    release_token_keep_error(c);
    return fail(out);
  }
  if (c->resolved && c->status == JobStatus::Done) return finish(c, out);
  return yield_self(c, out);  // woken by someone else: keep waiting
}

}  // namespace

PySendResult call_send(PyObject* self, PyObject* arg, PyObject** out) {
  ThreadCall* c = as_call(self);
  switch (c->astate) {
    case AwaitState::Init:
      return start(c, out);
    case AwaitState::Acquire:
    case AwaitState::Trio:
      return after_inner(c, PyIter_Send(c->inner, arg, out), out);
    case AwaitState::Wait:
      return resume(c, out);
    case AwaitState::Finished:
      break;
  }
  PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited to_thread.run_sync() call");
  return fail(out);
}

PyObject* call_throw(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  ThreadCall* c = as_call(self);
  switch (c->astate) {
    case AwaitState::Acquire:
    case AwaitState::Trio: {
      PyObject* out = nullptr;
      PySendResult r = after_inner(c, forward_throw(c->inner, args, nargs, &out), &out);
      return send_result_to_python(r, out);
    }
    case AwaitState::Wait:
      // Cancelled while waiting (abandoned), or the task was cancelled
      // natively and resumes into the exception: the outcome is dropped.
      c->astate = AwaitState::Finished;
      if (c->status != JobStatus::Done) abandon_job(c);
      drop_host(c);
      set_thrown(args, nargs);
      release_token_keep_error(c);
      return nullptr;
    case AwaitState::Init:
    case AwaitState::Finished:
      break;
  }
  c->astate = AwaitState::Finished;
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* call_close(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  if (c->inner) {
    PyObject* inner = c->inner;
    c->inner = nullptr;
    PyObject* r = call_method0(inner, G.s_close);
    Py_DECREF(inner);
    if (!r) PyErr_WriteUnraisable(self);
    Py_XDECREF(r);
  }
  if (c->astate != AwaitState::Finished && c->astate != AwaitState::Init) {
    if (c->status != JobStatus::Done) abandon_job(c);
    drop_host(c);
    if (release_token(c) < 0) PyErr_WriteUnraisable(self);
  }
  c->astate = AwaitState::Finished;
  Py_RETURN_NONE;
}

}  // namespace anyio::threads
