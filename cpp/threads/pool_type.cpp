// WorkerPool as Python sees it (anyio._cpp.WorkerPool), and the module
// functions that find, make, close and tune pools.
#include <cmath>

#include "cancel/core.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

PyTypeObject* WorkerPoolType = nullptr;

namespace {

inline WorkerPool* P(PyObject* o) { return reinterpret_cast<WorkerPool*>(o); }

int pool_traverse(WorkerPool* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  THREADS_WORKER_POOL_REFS(THREADS_VISIT_REF)
  return 0;
}

int pool_clear(WorkerPool* self) {
  THREADS_WORKER_POOL_REFS(THREADS_CLEAR_REF)
  return 0;
}

void pool_dealloc(WorkerPool* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  pool_clear(self);
  // Workers hold a reference, so none is left; a queued wake-up holds one
  // (through drain_cb), so normally nothing is queued either.
  pool_discard(self);
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
  if (pool_close(P(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Trio: the run ended; nothing queued can be delivered.
PyObject* pool_py_abort(PyObject* self, PyObject*) {
  WorkerPool* p = P(self);
  p->loop_gone = true;
  if (pool_close(p) < 0) return nullptr;
  pool_discard(p);
  Py_RETURN_NONE;
}

PyObject* pool_get_threads(PyObject* self, void*) {
  std::lock_guard<std::mutex> lk(*P(self)->mu);
  return PyLong_FromSize_t(P(self)->threads);
}

PyObject* pool_get_idle(PyObject* self, void*) {
  std::lock_guard<std::mutex> lk(*P(self)->mu);
  return PyLong_FromSize_t(P(self)->idle);
}

// Reads a number of seconds for a timeout: finite and not negative.
bool as_seconds(PyObject* value, double* out) {
  double v = value ? PyFloat_AsDouble(value) : -1;
  if (v == -1 && PyErr_Occurred()) return false;
  if (!(v >= 0) || std::isinf(v)) {
    PyErr_SetString(PyExc_ValueError, "idle timeout must be a finite number >= 0");
    return false;
  }
  *out = v;
  return true;
}

PyObject* pool_get_timeout(PyObject* self, void*) { return PyFloat_FromDouble(P(self)->idle_timeout); }

int pool_set_timeout(PyObject* self, PyObject* value, void*) {
  return as_seconds(value, &P(self)->idle_timeout) ? 0 : -1;
}

PyObject* pool_get_closing(PyObject* self, void*) { return PyBool_FromLong(P(self)->closing); }
PyObject* pool_get_outstanding(PyObject* self, void*) { return PyLong_FromSsize_t(P(self)->outstanding); }

PyObject* pool_get_limiter(PyObject* self, void*) {
  return Py_NewRef(P(self)->default_limiter ? P(self)->default_limiter : Py_None);
}

int pool_set_limiter(PyObject* self, PyObject* value, void*) {
  if (value == Py_None) value = nullptr;
  Py_XSETREF(P(self)->default_limiter, Py_XNewRef(value));
  return 0;
}

PyObject* pool_get_token(PyObject* self, void*) {
  WorkerPool* p = P(self);
  PyObject* r = p->is_trio ? (p->trio_token ? p->trio_token : Py_None) : (p->loop ? p->loop : Py_None);
  return Py_NewRef(r);
}

PyObject* pool_get_is_trio(PyObject* self, void*) { return PyBool_FromLong(P(self)->is_trio); }

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
    {"__weaklistoffset__", T_PYSSIZET, offsetof(WorkerPool, weakreflist), READONLY, nullptr},
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
    sizeof(WorkerPool),
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
  WorkerPool* p = pool_for_loop(loop);
  if (!p) return nullptr;
  return Py_NewRef(reinterpret_cast<PyObject*>(p));
}

PyObject* fn_new_trio_pool(PyObject*, PyObject* token) {
  WorkerPool* p = pool_new(true);
  if (!p) return nullptr;
  p->trio_token = Py_NewRef(token);
  return reinterpret_cast<PyObject*>(p);
}

PyObject* fn_set_default_idle_timeout(PyObject*, PyObject* value) {
  double v;
  if (!as_seconds(value, &v)) return nullptr;
  return PyFloat_FromDouble(std::exchange(settings.idle_timeout, v));
}

PyObject* fn_set_reply_spin(PyObject*, PyObject* value) {
  double v = PyFloat_AsDouble(value);
  if (v == -1 && PyErr_Occurred()) return nullptr;
  return PyFloat_FromDouble(std::exchange(settings.reply_spin, v));
}

PyObject* fn_set_spin(PyObject*, PyObject* value) {
  double v = PyFloat_AsDouble(value);
  if (v == -1 && PyErr_Occurred()) return nullptr;
  return PyFloat_FromDouble(std::exchange(settings.worker_spin, v));
}

// close_worker_pool(loop): the loop's run is over (anyio.run calls this once
// the loop is closed); idle workers leave now rather than at their timeout.
PyObject* fn_close_pool(PyObject*, PyObject* loop) {
  if (pool_close_for_loop(loop) < 0) return nullptr;
  Py_RETURN_NONE;
}

// At interpreter exit (threading's atexit hooks run before it joins
// non-daemon threads): the pools of loops that no longer run let their idle
// workers go, so that they do not hold up the exit until their idle timeout.
PyObject* fn_close_idle_pools(PyObject*, PyObject*) {
  pool_close_idle();
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
    {"set_reply_spin", fn_set_reply_spin, METH_O,
     "Seconds a worker waiting for the loop's answer polls before sleeping (0 disables); returns the "
     "previous value."},
    {"set_worker_spin", fn_set_spin, METH_O,
     "Seconds an idle worker polls for a job before sleeping (0 disables); returns the previous value."},
    {nullptr, nullptr, 0, nullptr},
};

int register_globals() {
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
  // RunFinishedError is raised only here (AnyioExceptions has the classes
  // several components raise).
  PyObject* exc = PyImport_ImportModule("anyio._exceptions");
  if (!exc) return -1;
  TG.RunFinishedError = PyObject_GetAttrString(exc, "RunFinishedError");
  Py_DECREF(exc);
  return TG.RunFinishedError ? 0 : -1;
}

}  // namespace

int register_pool_type(PyObject* module) {
  WorkerPoolType = add_type(module, &pool_spec);
  if (!WorkerPoolType) return -1;
  if (PyModule_AddFunctions(module, module_fns) < 0) return -1;
  if (register_workers(module) < 0) return -1;
  return register_globals();
}

}  // namespace anyio::threads

namespace anyio {

// The whole component, for module.cpp.
int register_threads(PyObject* module) {
  using namespace threads;
  if (register_pool_type(module) < 0) return -1;
  if (register_thread_request(module) < 0) return -1;
  if (register_context_awaitable(module) < 0) return -1;
  return register_thread_call(module);
}

}  // namespace anyio
