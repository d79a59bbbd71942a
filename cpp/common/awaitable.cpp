#include "common/awaitable.hpp"

#include <vector>

namespace anyio {

void set_stop_iteration(PyObject* value) {
  if (value == Py_None) {
    Py_DECREF(value);
    PyErr_SetNone(PyExc_StopIteration);
    return;
  }
  // Always wrap: a tuple or an exception given to PyErr_SetObject would be
  // taken apart or raised instead of carried as the value.
  PyObject* e = PyObject_CallOneArg(PyExc_StopIteration, value);
  Py_DECREF(value);
  if (e) {
    PyErr_SetObject(PyExc_StopIteration, e);
    Py_DECREF(e);
  }
}

PySendResult send_result_of_call(PyObject* res, PyObject** out) {
  if (res) {
    *out = res;
    return PYGEN_NEXT;
  }
  if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject* rv = value ? PyObject_GetAttrString(value, "value") : Py_NewRef(Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    *out = rv;
    return rv ? PYGEN_RETURN : PYGEN_ERROR;
  }
  *out = nullptr;
  return PYGEN_ERROR;
}

int check_throw_args(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 3) {
    PyErr_Format(PyExc_TypeError,
                 nargs < 1 ? "throw expected at least 1 argument, got %zd"
                           : "throw expected at most 3 arguments, got %zd",
                 nargs);
    return -1;
  }
  PyObject* typ = args[0];
  PyObject* val = nargs > 1 ? args[1] : Py_None;
  PyObject* tb = nargs > 2 ? args[2] : Py_None;
  if (tb != Py_None && !PyTraceBack_Check(tb)) {
    PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
    return -1;
  }
  if (PyExceptionInstance_Check(typ)) {
    if (val != Py_None) {
      PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
      return -1;
    }
  } else if (!PyExceptionClass_Check(typ)) {
    PyErr_Format(PyExc_TypeError,
                 "exceptions must be classes or instances deriving from BaseException, not %s",
                 Py_TYPE(typ)->tp_name);
    return -1;
  }
#if PY_VERSION_HEX >= 0x030C0000
  if (nargs > 1 &&
      PyErr_WarnEx(
          PyExc_DeprecationWarning,
          "the (type, exc, tb) signature of throw() is deprecated, use the single-arg signature instead.",
          1) < 0)
    return -1;
#endif
  return 0;
}

void set_thrown(PyObject* const* args, Py_ssize_t nargs) {
  PyObject* typ = args[0];
  PyObject* val = nargs > 1 ? args[1] : Py_None;
  PyObject* tb = nargs > 2 ? args[2] : Py_None;
  if (PyExceptionInstance_Check(typ)) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
  } else {
    // Instantiate now, as a generator does: a value the class rejects
    // raises the constructor's error instead.
    PyObject *t = Py_NewRef(typ), *v = Py_NewRef(val), *unused = nullptr;
    PyErr_NormalizeException(&t, &v, &unused);
    if (!v || !PyExceptionInstance_Check(v)) {
      Py_XDECREF(t);
      Py_XDECREF(v);
      Py_XDECREF(unused);
      if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "calling the exception class did not return an exception instance");
      return;
    }
    Py_XDECREF(unused);
    PyErr_Restore(t, v, nullptr);
  }
  if (tb != Py_None) {
    PyObject *t, *v, *old_tb;
    PyErr_Fetch(&t, &v, &old_tb);
    Py_XDECREF(old_tb);
    PyErr_Restore(t, v, Py_NewRef(tb));
  }
}

PySendResult forward_throw(PyObject* inner, PyObject* const* args, Py_ssize_t nargs, PyObject** out) {
  PyObject* fwd[4] = {inner};
  for (Py_ssize_t i = 0; i < nargs && i < 3; ++i) fwd[i + 1] = args[i];
  PyObject* res = PyObject_VectorcallMethod(G.s_throw, fwd, static_cast<size_t>(nargs + 1), nullptr);
  return send_result_of_call(res, out);
}

PySendResult inner_send(PyObject** inner, PyObject* arg, PyObject** out) {
  PySendResult r = PyIter_Send(*inner, arg, out);
  if (r != PYGEN_NEXT) Py_CLEAR(*inner);
  return r;
}

PySendResult inner_throw(PyObject** inner, PyObject* const* args, Py_ssize_t nargs, PyObject** out) {
  PySendResult r = forward_throw(*inner, args, nargs, out);
  if (r != PYGEN_NEXT) Py_CLEAR(*inner);
  return r;
}

PyObject* inner_close(PyObject** inner) {
  PyObject* r = call_method0(*inner, G.s_close);
  Py_CLEAR(*inner);
  return r;
}

// --- The awaitable base -------------------------------------------------------------

namespace {

// The generic slots reach the type's own send through its am_send slot: one
// indirect call, paid only by Python-level send() and old-style iteration.
PySendResult type_send(PyObject* self, PyObject* arg, PyObject** out) {
  return Py_TYPE(self)->tp_as_async->am_send(self, arg, out);
}

PyObject* awaitable_iternext(PyObject* self) { return iternext_via_send<type_send>(self); }

PyObject* awaitable_send_method(PyObject* self, PyObject* arg) {
  return send_method_via_send<type_send>(self, arg);
}

void awaitable_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

}  // namespace

PyTypeObject* add_awaitable_type(PyObject* module, const AwaitableSpec& spec) {
  // PyType_FromSpec keeps pointers to the method, getset and member tables,
  // so the tables built here live as long as the process.
  std::vector<PyMethodDef> methods = {
      {"send", awaitable_send_method, METH_O, nullptr},
      {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(spec.throw_)), METH_FASTCALL,
       nullptr},
      {"close", spec.close, METH_NOARGS, nullptr},
  };
  for (PyMethodDef* m = spec.methods; m && m->ml_name; ++m) methods.push_back(*m);
  methods.push_back({nullptr, nullptr, 0, nullptr});
  auto* method_table = new PyMethodDef[methods.size()];
  std::copy(methods.begin(), methods.end(), method_table);

  std::vector<PyType_Slot> slots = {
      {Py_am_send, reinterpret_cast<void*>(spec.send)},
      {Py_am_await, reinterpret_cast<void*>(await_self)},
      {Py_tp_iter, reinterpret_cast<void*>(await_self)},
      {Py_tp_iternext, reinterpret_cast<void*>(awaitable_iternext)},
      {Py_tp_dealloc, reinterpret_cast<void*>(spec.dealloc ? spec.dealloc : awaitable_dealloc)},
      {Py_tp_traverse, reinterpret_cast<void*>(spec.traverse)},
      {Py_tp_clear, reinterpret_cast<void*>(spec.clear)},
      {Py_tp_methods, method_table},
  };
  if (spec.getset) slots.push_back({Py_tp_getset, spec.getset});
  if (spec.members) slots.push_back({Py_tp_members, spec.members});
  slots.push_back({0, nullptr});

  PyType_Spec type_spec = {
      spec.name,
      static_cast<int>(spec.basicsize),
      0,
      static_cast<unsigned int>(Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION |
                                spec.extra_flags),
      slots.data(),
  };
  return add_type(module, &type_spec);
}

}  // namespace anyio
