// ContextAwaitable: awaits func(*args) with every step (the call that makes
// the awaitable, each send and each throw) run inside a given contextvars
// context. from_thread.run requests run this way on the loop, so the
// coroutine sees the calling thread's context variables and its changes stay
// in the request's context.
#include "common/awaitable.hpp"
#include "threads/threads.hpp"

namespace anyio::threads {

namespace {

PyTypeObject* ContextAwaitableType = nullptr;

#define THREADS_CONTEXT_AWAITABLE_REFS(X) X(context) X(func) X(args) X(it)

struct ContextAwaitable {
  PyObject_HEAD
  PyObject* context;
  PyObject* func;  // func and args until the first step makes `it`
  PyObject* args;
  PyObject* it;  // the awaitable's iterator while it runs
  bool started;
};

inline ContextAwaitable* CA(PyObject* o) { return reinterpret_cast<ContextAwaitable*>(o); }

int ca_traverse(ContextAwaitable* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  THREADS_CONTEXT_AWAITABLE_REFS(THREADS_VISIT_REF)
  return 0;
}

int ca_clear(ContextAwaitable* self) {
  THREADS_CONTEXT_AWAITABLE_REFS(THREADS_CLEAR_REF)
  return 0;
}

PySendResult ca_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  ContextAwaitable* self = CA(self_obj);
  if (!self->func && !self->it) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  if (PyContext_Enter(self->context) < 0) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
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
  PySendResult r = PyIter_Send(self->it, arg, out);
  PyContext_Exit(self->context);
  if (r != PYGEN_NEXT) Py_CLEAR(self->it);
  return r;
}

PyObject* ca_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  ContextAwaitable* self = CA(self_obj);
  if (!self->it) {
    // Not started (or finished): the function is never called.
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    set_thrown(args, nargs);
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
  ContextAwaitable* self = CA(self_obj);
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

const AwaitableSpec ca_spec = {
    .name = "anyio._cpp.ContextAwaitable",
    .basicsize = sizeof(ContextAwaitable),
    .send = ca_send,
    .throw_ = ca_throw,
    .close = ca_close,
    .traverse = reinterpret_cast<traverseproc>(ca_traverse),
    .clear = reinterpret_cast<inquiry>(ca_clear),
};

// run_in_context(context, func, args) -> awaitable of func(*args) whose every
// step runs inside `context`.
PyObject* fn_run_in_context(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) return raise(PyExc_TypeError, "run_in_context(context, func, args)");
  if (!PyContext_CheckExact(args[0])) return raise(PyExc_TypeError, "context must be a contextvars.Context");
  if (!PyTuple_Check(args[2])) return raise(PyExc_TypeError, "args must be a tuple");
  auto* self = new_awaitable<ContextAwaitable>(ContextAwaitableType);
  if (!self) return nullptr;
  self->context = Py_NewRef(args[0]);
  self->func = Py_NewRef(args[1]);
  self->args = Py_NewRef(args[2]);
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

PyMethodDef module_fns[] = {
    {"run_in_context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_run_in_context)),
     METH_FASTCALL, "Await func(*args) with every step run inside the given context."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

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

int register_context_awaitable(PyObject* module) {
  ContextAwaitableType = add_awaitable_type(module, ca_spec);
  if (!ContextAwaitableType) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio::threads
