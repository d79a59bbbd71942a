// Requests from worker (or foreign) threads to the event loop, and the
// awaitable that runs a coroutine function inside a given contextvars context.
#include "common/awaitable.hpp"
#include "cancel/core.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

PyTypeObject* RequestType = nullptr;

namespace {

PyTypeObject* CtxAwaitType = nullptr;

int req_traverse(Request* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->func);
  Py_VISIT(self->args);
  Py_VISIT(self->context);
  Py_VISIT(self->result);
  Py_VISIT(self->exc);
  Py_VISIT(self->call);
  return 0;
}

int req_clear(Request* self) {
  Py_CLEAR(self->func);
  Py_CLEAR(self->args);
  Py_CLEAR(self->context);
  Py_CLEAR(self->result);
  Py_CLEAR(self->exc);
  Py_CLEAR(self->call);
  return 0;
}

void req_dealloc(Request* self) {
  PyObject_GC_UnTrack(self);
  req_clear(self);
  delete self->mu;
  delete self->cv;
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* req_set_result(PyObject* self, PyObject* value) {
  auto* r = reinterpret_cast<Request*>(self);
  if (r->done) return raise(PyExc_RuntimeError, "request already finished");
  request_finish(r, value, nullptr);
  Py_RETURN_NONE;
}

PyObject* req_set_exception(PyObject* self, PyObject* exc) {
  auto* r = reinterpret_cast<Request*>(self);
  if (!PyExceptionInstance_Check(exc)) return raise(PyExc_TypeError, "expected an exception instance");
  if (r->done) return raise(PyExc_RuntimeError, "request already finished");
  request_finish(r, nullptr, exc);
  Py_RETURN_NONE;
}

PyObject* req_wait(PyObject* self, PyObject*) { return request_wait(reinterpret_cast<Request*>(self)); }

PyObject* req_run_sync(PyObject* self, PyObject*) {
  request_run_sync(reinterpret_cast<Request*>(self));
  Py_RETURN_NONE;
}

PyObject* req_get_done(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Request*>(self)->done);
}

PyObject* req_get_is_async(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<Request*>(self)->kind == REQ_ASYNC);
}

PyMethodDef req_methods[] = {
    {"set_result", req_set_result, METH_O, "Hand the result back to the waiting thread."},
    {"set_exception", req_set_exception, METH_O, "Hand an exception back to the waiting thread."},
    {"wait", req_wait, METH_NOARGS, "Block (without the GIL) until finished; return or raise the outcome."},
    {"run_sync", req_run_sync, METH_NOARGS, "Run a synchronous request here and finish it."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef req_members[] = {
    {"func", T_OBJECT, offsetof(Request, func), READONLY, nullptr},
    {"args", T_OBJECT, offsetof(Request, args), READONLY, nullptr},
    {"context", T_OBJECT, offsetof(Request, context), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef req_getset[] = {
    {"done", req_get_done, nullptr, nullptr, nullptr},
    {"is_async", req_get_is_async, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot req_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(req_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(req_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(req_clear)},
    {Py_tp_methods, req_methods},
    {Py_tp_members, req_members},
    {Py_tp_getset, req_getset},
    {0, nullptr},
};

PyType_Spec req_spec = {
    "anyio._cpp.ThreadRequest",
    sizeof(Request),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    req_slots,
};

// ThreadRequest(is_async, func, args, context=None): for foreign threads that
// reach the loop through a token.
PyObject* fn_new_request(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 3 || nargs > 4)
    return raise(PyExc_TypeError, "new_request(is_async, func, args, context=None)");
  int is_async = PyObject_IsTrue(args[0]);
  if (is_async < 0) return nullptr;
  if (!PyTuple_Check(args[2])) return raise(PyExc_TypeError, "args must be a tuple");
  PyObject* ctx = nargs == 4 && args[3] != Py_None ? Py_NewRef(args[3]) : PyContext_CopyCurrent();
  if (!ctx) return nullptr;
  PyObject* r = request_new(is_async ? REQ_ASYNC : REQ_SYNC, args[1], args[2], ctx, nullptr);
  Py_DECREF(ctx);
  return r;
}

// --- CtxAwait: await func(*args) with every step inside `context` -------------

struct CtxAwait {
  PyObject_HEAD
  PyObject* context;
  PyObject* func;
  PyObject* args;
  PyObject* it;
  bool started;
};

int ca_traverse(CtxAwait* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->context);
  Py_VISIT(self->func);
  Py_VISIT(self->args);
  Py_VISIT(self->it);
  return 0;
}

int ca_clear(CtxAwait* self) {
  Py_CLEAR(self->context);
  Py_CLEAR(self->func);
  Py_CLEAR(self->args);
  Py_CLEAR(self->it);
  return 0;
}

void ca_dealloc(CtxAwait* self) {
  PyObject_GC_UnTrack(self);
  ca_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

// The iterator behind an awaitable (what `await obj` would iterate).
PyObject* await_iter(PyObject* obj) {
  if (PyCoro_CheckExact(obj)) return Py_NewRef(obj);
  PyTypeObject* tp = Py_TYPE(obj);
  if (tp->tp_as_async && tp->tp_as_async->am_await) {
    PyObject* it = tp->tp_as_async->am_await(obj);
    if (it && !PyIter_Check(it)) {
      PyErr_Format(PyExc_TypeError, "__await__() returned non-iterator of type '%.100s'",
                   Py_TYPE(it)->tp_name);
      Py_CLEAR(it);
    }
    return it;
  }
  if (PyGen_CheckExact(obj)) {
    // A generator-based coroutine (@types.coroutine) is awaitable as is.
    PyObject* code = PyObject_GetAttrString(obj, "gi_code");
    bool ok = code && PyCode_Check(code) &&
              (reinterpret_cast<PyCodeObject*>(code)->co_flags & CO_ITERABLE_COROUTINE);
    Py_XDECREF(code);
    PyErr_Clear();
    if (ok) return Py_NewRef(obj);
  }
  PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression", tp->tp_name);
  return nullptr;
}

PySendResult ca_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<CtxAwait*>(self_obj);
  if (!self->func && !self->it) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  if (PyContext_Enter(self->context) < 0) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  PySendResult r;
  if (!self->started) {
    self->started = true;
    PyObject* aw = PyObject_Call(self->func, self->args, nullptr);
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    self->it = aw ? await_iter(aw) : nullptr;
    Py_XDECREF(aw);
    if (!self->it) {
      PyContext_Exit(self->context);
      *out = nullptr;
      return PYGEN_ERROR;
    }
    arg = Py_None;
  }
  r = PyIter_Send(self->it, arg, out);
  PyContext_Exit(self->context);
  if (r != PYGEN_NEXT) Py_CLEAR(self->it);
  return r;
}

PyObject* ca_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<CtxAwait*>(self_obj);
  if (!self->it) {
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    PyObject* typ = args[0];
    if (PyExceptionInstance_Check(typ))
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
    else if (nargs > 1 && args[1] != Py_None)
      PyErr_SetObject(typ, args[1]);
    else
      PyErr_SetNone(typ);
    return nullptr;
  }
  if (PyContext_Enter(self->context) < 0) return nullptr;
  PyObject* fwd[4] = {self->it};
  for (Py_ssize_t i = 0; i < nargs && i < 3; ++i) fwd[i + 1] = args[i];
  PyObject* r = PyObject_VectorcallMethod(G.s_throw, fwd, static_cast<size_t>(nargs + 1), nullptr);
  PyContext_Exit(self->context);
  if (!r) Py_CLEAR(self->it);
  return r;
}

PyObject* ca_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<CtxAwait*>(self_obj);
  Py_CLEAR(self->func);
  Py_CLEAR(self->args);
  if (!self->it) Py_RETURN_NONE;
  PyObject* it = self->it;
  self->it = nullptr;
  PyObject* close = PyObject_GetAttr(it, G.s_close);
  if (!close) {
    PyErr_Clear();
    Py_DECREF(it);
    Py_RETURN_NONE;
  }
  PyObject* r = PyObject_CallNoArgs(close);
  Py_DECREF(close);
  Py_DECREF(it);
  return r;
}

PyMethodDef ca_methods[] = {
    {"send", send_method_via_send<ca_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ca_throw)), METH_FASTCALL, nullptr},
    {"close", ca_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot ca_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(ca_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<ca_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(ca_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(ca_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(ca_clear)},
    {Py_tp_methods, ca_methods},
    {0, nullptr},
};

PyType_Spec ca_spec = {
    "anyio._cpp.ContextAwaitable",
    sizeof(CtxAwait),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    ca_slots,
};

// run_in_context(context, func, args) -> awaitable of func(*args) whose every
// step runs inside `context`.
PyObject* fn_run_in_context(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) return raise(PyExc_TypeError, "run_in_context(context, func, args)");
  if (!PyContext_CheckExact(args[0])) return raise(PyExc_TypeError, "context must be a contextvars.Context");
  if (!PyTuple_Check(args[2])) return raise(PyExc_TypeError, "args must be a tuple");
  auto* self = PyObject_GC_New(CtxAwait, CtxAwaitType);
  if (!self) return nullptr;
  self->context = Py_NewRef(args[0]);
  self->func = Py_NewRef(args[1]);
  self->args = Py_NewRef(args[2]);
  self->it = nullptr;
  self->started = false;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

PyMethodDef module_fns[] = {
    {"new_thread_request", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_new_request)),
     METH_FASTCALL, "A request for the event loop thread, to finish with set_result/set_exception."},
    {"run_in_context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_run_in_context)),
     METH_FASTCALL, "Await func(*args) with every step run inside the given context."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* fetch_exception() {
#if PY_VERSION_HEX >= 0x030C0000
  return PyErr_GetRaisedException();
#else
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (!type) return nullptr;
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  return value;
#endif
}

void restore_exception(PyObject* exc) {
#if PY_VERSION_HEX >= 0x030C0000
  PyErr_SetRaisedException(exc);
#else
  PyObject* tb = PyException_GetTraceback(exc);
  PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(exc));
  Py_INCREF(type);
  PyErr_Restore(type, exc, tb);
#endif
}

void raise_exception(PyObject* exc) {
  // As a `raise` statement would: an exception raised while the caller handles
  // another gets that one as its __context__ (upstream re-raises the outcome
  // with `raise`, so code inspecting __context__ sees the same chain).
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
}

PyObject* request_new(RequestKind kind, PyObject* func, PyObject* args, PyObject* context, PyObject* call) {
  auto* r = PyObject_GC_New(Request, RequestType);
  if (!r) return nullptr;
  r->kind = kind;
  r->done = false;
  r->func = Py_NewRef(func);
  r->args = Py_NewRef(args);
  r->context = Py_NewRef(context);
  r->result = nullptr;
  r->exc = nullptr;
  r->call = Py_XNewRef(call);
  r->mu = new std::mutex();
  r->cv = new std::condition_variable();
  PyObject_GC_Track(r);
  return reinterpret_cast<PyObject*>(r);
}

void request_finish(Request* r, PyObject* result, PyObject* exc) {
  if (r->done) return;
  if (exc)
    r->exc = Py_NewRef(exc);
  else
    r->result = Py_NewRef(result ? result : Py_None);
  {
    std::lock_guard<std::mutex> lk(*r->mu);
    __atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
  }
  r->cv->notify_all();
}

void request_run_sync(Request* r) {
  PyObject* res = nullptr;
  if (PyContext_Enter(r->context) == 0) {
    res = PyObject_Call(r->func, r->args, nullptr);
    PyContext_Exit(r->context);
  }
  if (res) {
    request_finish(r, res, nullptr);
    Py_DECREF(res);
  } else {
    PyObject* e = fetch_exception();
    request_finish(r, nullptr, e);
    Py_XDECREF(e);
  }
}

PyObject* request_wait(Request* r, Pool* pool, bool wake) {
  Py_INCREF(r);
  // With the GIL (the loop's thread-safe wake-up is a Python call), before
  // it is released to wait; if the loop is closed this fails the request.
  if (wake && pool) pool_wakeup(pool);
  if (!r->done) {
    double spin = reply_spin_seconds();
    Py_BEGIN_ALLOW_THREADS
      // The loop usually answers within microseconds: poll for a moment
      // before sleeping, which saves this thread a futex wake-up.
      // Only when this is the pool's one busy worker, and one poller at a
      // time: with other workers running, polling takes the CPU they and the
      // loop need (measured: four callers at once got slower).
      static std::atomic<bool> polling{false};
      bool expected = false;
      if (spin > 0 && pool && pool_sole_busy_worker(pool) &&
          polling.compare_exchange_strong(expected, true)) {
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(spin));
        while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < until) {
          for (int i = 0; i < 64; ++i) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
          }
        }
        polling.store(false);
      }
    Py_END_ALLOW_THREADS
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
      bool done;
      // Scoped so the lock is released before the GIL is taken back (lock
      // order: GIL, then this mutex).
      Py_BEGIN_ALLOW_THREADS
        {
          std::unique_lock<std::mutex> lk(*r->mu);
          done = r->cv->wait_for(lk, std::chrono::milliseconds(pool ? 100 : 1000), [r] { return r->done; });
        }
      Py_END_ALLOW_THREADS
      if (!done && PyErr_CheckSignals() < 0) {  // Ctrl+C in a waiting main thread
        Py_DECREF(r);
        return nullptr;
      }
      if (!done && pool && pool_loop_finished(pool)) {
        PyObject* e = run_finished_error();
        if (!e) {
          Py_DECREF(r);
          return nullptr;
        }
        request_finish(r, nullptr, e);
        Py_DECREF(e);
      }
    }
  }
  PyObject* out = nullptr;
  if (r->exc)
    raise_exception(Py_NewRef(r->exc));
  else
    out = Py_NewRef(r->result);
  Py_DECREF(r);
  return out;
}

int register_threads_request(PyObject* module) {
  RequestType = add_type(module, &req_spec);
  CtxAwaitType = add_type(module, &ca_spec);
  if (!RequestType || !CtxAwaitType) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio::threads
