// ThreadRequest: a request from a worker (or foreign) thread to run something
// on the event loop thread, which the requesting thread waits on without the
// GIL. Also the exception helpers the component shares.
#include <atomic>

#include "threads/threads.hpp"

namespace anyio::threads {

PyTypeObject* ThreadRequestType = nullptr;

namespace {

// After tp_clear in the dealloc.
void req_free_native(PyObject* self_obj) {
  auto* self = reinterpret_cast<ThreadRequest*>(self_obj);
  delete self->mu;
  delete self->cv;
}

PyObject* req_set_result(PyObject* self, PyObject* value) {
  auto* r = reinterpret_cast<ThreadRequest*>(self);
  if (r->done) return raise(PyExc_RuntimeError, "request already finished");
  request_finish(r, value, nullptr);
  Py_RETURN_NONE;
}

PyObject* req_set_exception(PyObject* self, PyObject* exc) {
  auto* r = reinterpret_cast<ThreadRequest*>(self);
  if (!PyExceptionInstance_Check(exc)) return raise(PyExc_TypeError, "expected an exception instance");
  if (r->done) return raise(PyExc_RuntimeError, "request already finished");
  request_finish(r, nullptr, exc);
  Py_RETURN_NONE;
}

PyObject* req_wait(PyObject* self, PyObject*) { return request_wait(reinterpret_cast<ThreadRequest*>(self)); }

// For a request sent through a token: on asyncio the callback then re-raises
// what request_run_sync hands back.
PyObject* req_run_sync(PyObject* self, PyObject*) {
  PyObject* escaping = request_run_sync(reinterpret_cast<ThreadRequest*>(self));
  if (escaping && current_backend() == Backend::Asyncio) {
    raise_exception(escaping);
    return nullptr;
  }
  if (PyErr_Occurred()) PyErr_Clear();  // current_backend() could not tell: keep the exception out
  Py_XDECREF(escaping);
  Py_RETURN_NONE;
}

PyObject* req_get_done(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<ThreadRequest*>(self)->done);
}

PyObject* req_get_is_async(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<ThreadRequest*>(self)->kind == RequestKind::Async);
}

PyMethodDef req_methods[] = {
    {"set_result", req_set_result, METH_O, "Hand the result back to the waiting thread."},
    {"set_exception", req_set_exception, METH_O, "Hand an exception back to the waiting thread."},
    {"wait", req_wait, METH_NOARGS, "Block (without the GIL) until finished; return or raise the outcome."},
    {"run_sync", req_run_sync, METH_NOARGS, "Run a synchronous request here and finish it."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef req_members[] = {
    {"func", T_OBJECT, offsetof(ThreadRequest, func), READONLY, nullptr},
    {"args", T_OBJECT, offsetof(ThreadRequest, args), READONLY, nullptr},
    {"context", T_OBJECT, offsetof(ThreadRequest, context), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef req_getset[] = {
    {"done", req_get_done, nullptr, nullptr, nullptr},
    {"is_async", req_get_is_async, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

const TypeSpec req_spec = {
    .name = "anyio._cpp.ThreadRequest",
    .flags = Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .methods = req_methods,
    .getset = req_getset,
    .members = req_members,
    .dealloc = gc_dealloc<nullptr, req_free_native>,
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
  PyObject* r =
      request_new(is_async ? RequestKind::Async : RequestKind::Sync, args[1], args[2], ctx, nullptr);
  Py_DECREF(ctx);
  return r;
}

PyMethodDef module_fns[] = {
    {"new_thread_request", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_new_request)),
     METH_FASTCALL, "A request for the event loop thread, to finish with set_result/set_exception."},
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
  auto* r = PyObject_GC_New(ThreadRequest, ThreadRequestType);
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

void request_finish(ThreadRequest* r, PyObject* result, PyObject* exc) {
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

PyObject* request_run_sync(ThreadRequest* r) {
  PyObject* res = nullptr;
  if (PyContext_Enter(r->context) == 0) {
    res = PyObject_Call(r->func, r->args, nullptr);
    PyContext_Exit(r->context);
  }
  if (res) {
    request_finish(r, res, nullptr);
    Py_DECREF(res);
    return nullptr;
  }
  PyObject* e = fetch_exception();
  request_finish(r, nullptr, e);
  if (e && !PyObject_TypeCheck(e, reinterpret_cast<PyTypeObject*>(PyExc_Exception))) return e;
  Py_XDECREF(e);
  return nullptr;
}

void request_fail_run_finished(ThreadRequest* r) {
  PyObject* e = run_finished_error();
  if (!e) e = fetch_exception();
  request_finish(r, nullptr, e);
  Py_XDECREF(e);
}

namespace {

bool request_done(ThreadRequest* r) { return __atomic_load_n(&r->done, __ATOMIC_ACQUIRE); }

// The loop usually answers within microseconds: poll for a moment before
// sleeping, which saves the waiting thread a futex wake-up. Only when it is
// the pool's one busy worker, and one poller at a time: with other workers
// running, polling takes the CPU they and the loop need (measured: four
// callers at once got slower). GIL released.
void spin_for_reply(ThreadRequest* r, WorkerPool* pool, double spin) {
  static std::atomic<bool> polling{false};
  bool expected = false;
  if (spin > 0 && pool && pool_sole_busy_worker(pool) && polling.compare_exchange_strong(expected, true)) {
    spin_until(spin, [r] { return request_done(r); });
    polling.store(false);
  }
}

}  // namespace

PyObject* request_wait(ThreadRequest* r, WorkerPool* pool, bool wake) {
  Py_INCREF(r);
  // With the GIL (the loop's thread-safe wake-up is a Python call), before
  // it is released to wait; if the loop is closed this fails the request.
  if (wake && pool) pool_wakeup(pool);
  if (!r->done) {
    double spin = settings.reply_spin;
    Py_BEGIN_ALLOW_THREADS
      spin_for_reply(r, pool, spin);
    Py_END_ALLOW_THREADS
    std::chrono::milliseconds recheck(pool ? tunables::kRequestRecheckWorkerMs
                                           : tunables::kRequestRecheckForeignMs);
    while (!request_done(r)) {
      bool done;
      // Scoped so the lock is released before the GIL is taken back (lock
      // order: GIL, then this mutex).
      Py_BEGIN_ALLOW_THREADS
        {
          std::unique_lock<std::mutex> lk(*r->mu);
          done = r->cv->wait_for(lk, recheck, [r] { return r->done; });
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

int register_thread_request(PyObject* module) {
  ThreadRequestType = add_gc_type<ThreadRequest, ThreadRequestRefs>(module, req_spec);
  if (!ThreadRequestType) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio::threads
