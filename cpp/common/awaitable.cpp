#include "common/awaitable.hpp"

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

void set_thrown(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError, "throw expected at least 1 argument");
    return;
  }
  PyObject* typ = args[0];
  PyObject* val = nargs > 1 ? args[1] : nullptr;
  PyObject* tb = nargs > 2 ? args[2] : nullptr;
  if (PyExceptionInstance_Check(typ)) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(typ)), typ);
  } else if (val && val != Py_None) {
    PyErr_SetObject(typ, val);
  } else {
    PyErr_SetNone(typ);
  }
  if (tb && tb != Py_None && PyTraceBack_Check(tb)) {
    PyObject *t, *v, *old_tb;
    PyErr_Fetch(&t, &v, &old_tb);
    Py_XDECREF(old_tb);
    Py_INCREF(tb);
    PyErr_Restore(t, v, tb);
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

}  // namespace anyio
