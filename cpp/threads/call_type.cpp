// ThreadCall as Python sees it (anyio._cpp.ThreadCall): its type, its
// constructor thread_call(), and the methods the Trio driver in
// anyio._threads_trio uses to submit the job, park on it and take its outcome.
#include "common/awaitable.hpp"
#include "introspect/task_tree.hpp"
#include "threads/thread_call.hpp"

namespace anyio::threads {

PyTypeObject* ThreadCallType = nullptr;

namespace {

// --- Trio / Python-side driver API ------------------------------------------------------

PyObject* py_submit(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  ThreadCall* c = as_call(self);
  if (nargs != 2 || Py_TYPE(args[0]) != WorkerPoolType) return raise(PyExc_TypeError, "submit(pool, waiter)");
  if (c->pool) return raise(PyExc_RuntimeError, "already submitted");
  c->pool = reinterpret_cast<WorkerPool*>(Py_NewRef(args[0]));
  c->waiter = args[1] == Py_None ? nullptr : Py_NewRef(args[1]);
  if (pool_submit(c->pool, self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* py_take_request(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  c->resolved = false;
  if (!c->pending) Py_RETURN_NONE;
  PyObject* r = c->pending;
  c->pending = nullptr;
  return r;
}

PyObject* py_outcome(PyObject* self, PyObject*) {
  ThreadCall* c = as_call(self);
  if (c->status != JobStatus::Done) return raise(PyExc_RuntimeError, "the job has not finished");
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
  ThreadCall* c = as_call(self);
  if (c->status == JobStatus::Done && c->resolved) Py_RETURN_FALSE;
  abandon_job(c);
  c->cancelled = true;
  Py_CLEAR(c->waiter);
  Py_RETURN_TRUE;
}

PyObject* py_get_done(PyObject* self, void*) {
  return PyBool_FromLong(as_call(self)->status == JobStatus::Done);
}
PyObject* py_get_abandon(PyObject* self, void*) { return PyBool_FromLong(as_call(self)->abandon); }
PyObject* py_get_status(PyObject* self, void*) {
  return PyLong_FromLong(static_cast<long>(as_call(self)->status));
}

PyObject* py_get_backend(PyObject* self, void*) {
  ThreadCall* c = as_call(self);
  if (!c->pool) Py_RETURN_NONE;
  return PyUnicode_FromString(c->pool->is_trio ? "trio" : "asyncio");
}

PyObject* py_get_limiter(PyObject* self, void*) {
  ThreadCall* c = as_call(self);
  return Py_NewRef(c->limiter ? c->limiter : Py_None);
}

PyObject* call_repr(PyObject* self) {
  static const char* names[] = {"pending", "running", "finished", "abandoned"};
  return PyUnicode_FromFormat("<ThreadCall %s func=%R>", names[static_cast<int>(as_call(self)->status)],
                              as_call(self)->func ? as_call(self)->func : Py_None);
}

int call_traverse(PyObject* self_obj, visitproc visit, void* arg) {
  Py_VISIT(as_call(self_obj)->host_owner);
  return ThreadCallRefs::traverse(self_obj, visit, arg);
}

int call_clear(PyObject* self_obj) {
  drop_host(as_call(self_obj));
  return ThreadCallRefs::clear(self_obj);
}

// Before tp_clear in the dealloc: never lose a token, an awaitable dropped
// mid-wait gives it back.
void call_give_back_token(PyObject* self_obj) {
  ThreadCall* self = as_call(self_obj);
  if (self->borrower && self->limiter) {
    PyObject* r = call_method1(self->limiter, TG.s_release, self->borrower);
    if (!r) PyErr_WriteUnraisable(self->limiter);
    Py_XDECREF(r);
  }
}

// Besides send/throw/close: the Future protocol and the Trio driver's methods.
PyMethodDef call_methods[] = {
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

const AwaitableSpec call_spec = {
    .name = "anyio._cpp.ThreadCall",
    .send = call_send,
    .throw_ = call_throw,
    .close = call_close,
    .traverse = call_traverse,
    .clear = call_clear,
    .methods = call_methods,
    .getset = call_getset,
    .repr = call_repr,
    .dealloc = gc_dealloc<call_give_back_token>,
};

// thread_call(func, args, abandon_on_cancel, limiter) -> awaitable ThreadCall
PyObject* fn_thread_call(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4) return raise(PyExc_TypeError, "thread_call(func, args, abandon_on_cancel, limiter)");
  if (!PyTuple_Check(args[1])) return raise(PyExc_TypeError, "args must be a tuple");
  int abandon = PyObject_IsTrue(args[2]);
  if (abandon < 0) return nullptr;
  PyObject* ctx = PyContext_CopyCurrent();
  if (!ctx) return nullptr;
  // Every other field starts zeroed: null, false, JobStatus::Pending, AwaitState::Init.
  auto* c = new_awaitable<ThreadCall>(ThreadCallType);
  if (!c) {
    Py_DECREF(ctx);
    return nullptr;
  }
  c->func = Py_NewRef(args[0]);
  c->args = Py_NewRef(args[1]);
  c->ctx = ctx;
  c->limiter = args[3] == Py_None ? nullptr : Py_NewRef(args[3]);
  c->abandon = abandon;
  PyObject_GC_Track(c);
  return reinterpret_cast<PyObject*>(c);
}

PyMethodDef module_fns[] = {
    {"thread_call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_thread_call)),
     METH_FASTCALL,
     "thread_call(func, args, abandon_on_cancel, limiter)\n--\n\nAn awaitable that runs func(*args) in a "
     "worker thread of the current event loop."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

// introspection (task tree): what a ThreadCall's waiter waits on, read at snapshot time only.
PyObject* call_waits_on(PyObject* obj) {
  if (!ThreadCallType || Py_TYPE(obj) != ThreadCallType) Py_RETURN_NONE;
  ThreadCall* c = as_call(obj);
  const char* status = c->status == JobStatus::Pending   ? "pending"
                       : c->status == JobStatus::Running ? "running"
                       : c->status == JobStatus::Done    ? "done"
                                                         : "abandoned";
  PyObject* func = c->func ? c->func : Py_None;
  PyObject* limiter = c->limiter ? c->limiter : Py_None;
  PyObject* acquiring = c->astate == AwaitState::Acquire ? Py_True : Py_False;
  // started_at is written by the worker with the GIL held, before the job runs.
  if (c->status != JobStatus::Running)
    return Py_BuildValue("(sOsOOO)", "thread", func, status, limiter, acquiring, Py_None);
  return Py_BuildValue("(sOsOOd)", "thread", func, status, limiter, acquiring,
                       introspect_clock() - c->started_at);
}

int register_thread_call(PyObject* module) {
  ThreadCallType = add_awaitable_type<ThreadCall>(module, call_spec);
  if (!ThreadCallType) return -1;
  if (PyModule_AddFunctions(module, module_fns) < 0) return -1;
  return register_call_worker(module);
}

}  // namespace anyio::threads
