// ThreadCall as the future an asyncio task parks on (the Future protocol
// asyncio.Task uses: done callbacks, cancel, result), and waking the task (or
// the Trio driver) when the job is done.
#include "threads/thread_call.hpp"

namespace anyio::threads {

// --- waking the waiter ------------------------------------------------------------

int schedule_callback(ThreadCall* c, PyObject* cb, PyObject* ctx) {
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

int fire(ThreadCall* c, bool direct) {
  c->resolved = true;
  if (c->waiter) {  // Trio: the driver parks in wait_task_rescheduled
    const TrioLowlevel* trio_ll = trio();
    if (!trio_ll) return -1;
    PyObject* r = PyObject_CallOneArg(trio_ll->reschedule, c->waiter);
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

void call_resolve(PyObject* call) {
  ThreadCall* c = as_call(call);
  if (c->cancelled || c->status != JobStatus::Done) return;
  if (fire(c, true) < 0) PyErr_WriteUnraisable(call);
}

// --- the Future protocol ----------------------------------------------------------

PyObject* fut_get_blocking(PyObject* self, void*) { return PyBool_FromLong(as_call(self)->blocking); }

int fut_set_blocking(PyObject* self, PyObject* v, void*) {
  int b = v ? PyObject_IsTrue(v) : 0;
  if (b < 0) return -1;
  as_call(self)->blocking = b;
  return 0;
}

PyObject* fut_get_loop(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  if (!c->loop) return raise(PyExc_RuntimeError, "this call is not bound to an event loop");
  return Py_NewRef(c->loop);
}

PyObject* fut_add_done_callback(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  ThreadCall* c = as_call(self);
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
  ThreadCall* c = as_call(self);
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

namespace {

// A cancel scope made the caller give up the thread: its from_thread.run
// tasks still running are cancelled with the same message, except the task
// doing the cancelling.
int cancel_request_tasks(ThreadCall* c, PyObject* msg) {
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

}  // namespace

// cancel(msg=None). anyio cancel scopes never get here while the caller is
// shielded (the core sees `shielded_yield`); what does is a native
// Task.cancel() (asyncio.wait_for, TaskGroup, ...), which, as with a plain
// future, ends the wait at once and drops the thread's eventual outcome.
PyObject* fut_cancel(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  ThreadCall* c = as_call(self);
  PyObject* msg = nargs > 0 ? args[0] : nullptr;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) msg = args[nargs + i];
  }
  if (c->astate != AwaitState::Wait || c->resolved || c->cancelled) Py_RETURN_FALSE;
  abandon_job(c);
  c->cancelled = true;
  if (msg && msg != Py_None) c->cancel_msg = Py_NewRef(msg);
  if (c->req_tasks && cancel_request_tasks(c, msg) < 0) return nullptr;
  if (fire(c, false) < 0) return nullptr;
  Py_RETURN_TRUE;
}

PyObject* fut_done(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  return PyBool_FromLong(c->resolved || c->cancelled || c->astate == AwaitState::Finished);
}

PyObject* fut_cancelled(PyObject* self, PyObject*) { return PyBool_FromLong(as_call(self)->cancelled); }

PyObject* fut_result(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  if (c->cancelled) return raise_cancelled(c);
  if (!c->resolved && c->astate != AwaitState::Finished)
    return raise(G.InvalidStateError, "Result is not ready.");
  // The outcome itself is handed over by send(); the task only needs to know
  // it may resume.
  Py_RETURN_NONE;
}

PyObject* fut_exception(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  if (c->cancelled) return fut_result(self, nullptr);
  if (!c->resolved && c->astate != AwaitState::Finished)
    return raise(G.InvalidStateError, "Exception is not set.");
  Py_RETURN_NONE;
}

}  // namespace anyio::threads
