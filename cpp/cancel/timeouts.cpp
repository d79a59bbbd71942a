// The timeout helpers (fail_after, fail_at, move_on_after, move_on_at) and
// current_effective_deadline(): cancel scopes with a deadline, built in C.
#include "cancel/core.hpp"

namespace anyio {

namespace {

// trio.current_time(), for a relative deadline on Trio; NoEventLoopError
// outside any event loop. -1 with an error set on failure.
double trio_now() {
  Backend backend = current_backend();
  if (backend != Backend::Trio) {
    if (backend == Backend::None) raise_no_event_loop();
    return -1;
  }
  const TrioLowlevel* tr = trio();
  if (!tr) return -1;
  Ref now = Ref::steal(PyObject_CallNoArgs(tr->current_time));
  return now ? PyFloat_AsDouble(now.get()) : -1;
}

// fail_after/fail_at/move_on_after/move_on_at build scopes directly: they are
// on hot paths and a generator-based context manager would cost more than the
// scope itself.
PyObject* make_timeout_scope(PyObject* deadline_obj, PyObject* shield_obj, PyObject* reason, bool relative,
                             bool fail) {
  double value = kInfinity;
  double created_at = -1;
  if (deadline_obj != Py_None && parse_deadline(deadline_obj, &value) < 0) return nullptr;
  int shield = shield_obj ? PyObject_IsTrue(shield_obj) : 0;
  if (shield < 0) return nullptr;
  if (relative && deadline_obj != Py_None) {
    double now;
    PyObject* loop = running_loop();
    if (loop) {
      LoopState* ls = loop_state_for(loop);
      if (!ls) return nullptr;
      now = loop_time(ls);
    } else {
      if (PyErr_Occurred()) return nullptr;
      now = trio_now();
    }
    if (now == -1.0 && PyErr_Occurred()) return nullptr;
    value += now;
    created_at = now;
  }
  CancelScope* s = cs_alloc(CancelScopeType, value, shield);
  if (!s) return nullptr;
  s->fail_on_timeout = fail;
  s->created_at = created_at;
  if (reason && reason != Py_None) {
    Py_INCREF(reason);
    Py_SETREF(s->reason, reason);
  }
  return reinterpret_cast<PyObject*>(s);
}

bool parse_timeout_args(const char* fname, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        bool allow_reason, PyObject** delay, PyObject** shield, PyObject** reason) {
  *delay = nullptr;
  *shield = nullptr;
  *reason = Py_None;
  PyObject** slots[] = {delay, shield, reason};
  Py_ssize_t max_pos = allow_reason ? 3 : 2;
  if (nargs > max_pos) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments", fname, max_pos);
    return false;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) *slots[i] = args[i];
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, i);
      int idx = -1;
      if (PyUnicode_CompareWithASCIIString(key, "delay") == 0 ||
          PyUnicode_CompareWithASCIIString(key, "deadline") == 0)
        idx = 0;
      else if (PyUnicode_CompareWithASCIIString(key, "shield") == 0)
        idx = 1;
      else if (allow_reason && PyUnicode_CompareWithASCIIString(key, "reason") == 0)
        idx = 2;
      if (idx < 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
        return false;
      }
      *slots[idx] = args[nargs + i];
    }
  }
  if (!*delay) {
    PyErr_Format(PyExc_TypeError, "%s() missing required argument", fname);
    return false;
  }
  if (*reason != Py_None && !PyUnicode_Check(*reason)) {
    PyErr_SetString(PyExc_TypeError, "reason must be a string or None");
    return false;
  }
  return true;
}

#define TIMEOUT_FN(NAME, RELATIVE, FAIL)                                                       \
  PyObject* fn_##NAME(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) { \
    PyObject *d, *s, *r;                                                                       \
    if (!parse_timeout_args(#NAME, args, nargs, kwnames, FAIL, &d, &s, &r)) return nullptr;    \
    return make_timeout_scope(d, s, r, RELATIVE, FAIL);                                        \
  }
TIMEOUT_FN(fail_after, true, true)
TIMEOUT_FN(fail_at, false, true)
TIMEOUT_FN(move_on_after, true, false)
TIMEOUT_FN(move_on_at, false, false)

// The earliest deadline among the scopes that can cancel the current task.
PyObject* fn_current_effective_deadline(PyObject*, PyObject*) {
  TaskState* t = tls_current;
  if (!t) {
    bool on_trio;
    t = scope_task_state(&on_trio);
    if (on_trio) {
      const TrioLowlevel* tr = trio();
      return tr ? PyObject_CallNoArgs(tr->current_effective_deadline) : nullptr;
    }
    if (!t) return nullptr;
  }
  double best = kInfinity;
  for (CancelScope* s = t->scope ? t->scope : t->root; s; s = s->parent) {
    if (s->cancel_called) {
      best = -kInfinity;
      break;
    }
    if (s->deadline < best) best = s->deadline;
    if (s->shield) break;
  }
  return PyFloat_FromDouble(best);
}

PyMethodDef module_fns[] = {
    {"fail_after", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_fail_after)),
     METH_FASTCALL | METH_KEYWORDS,
     "fail_after(delay, shield=False, reason=None)\n--\n\nA cancel scope that raises "
     "TimeoutError if its block runs longer than `delay` seconds."},
    {"fail_at", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_fail_at)),
     METH_FASTCALL | METH_KEYWORDS,
     "fail_at(deadline, shield=False, reason=None)\n--\n\nA cancel scope that raises "
     "TimeoutError if its block is still running at `deadline`."},
    {"move_on_after", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_move_on_after)),
     METH_FASTCALL | METH_KEYWORDS,
     "move_on_after(delay, shield=False)\n--\n\nA cancel scope that cancels its block "
     "after `delay` seconds and carries on after it."},
    {"move_on_at", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_move_on_at)),
     METH_FASTCALL | METH_KEYWORDS,
     "move_on_at(deadline, shield=False)\n--\n\nA cancel scope that cancels its block "
     "at `deadline` and carries on after it."},
    {"current_effective_deadline", fn_current_effective_deadline, METH_NOARGS,
     "current_effective_deadline()\n--\n\nThe nearest deadline that applies to the "
     "current task: -inf if it is already cancelled, inf if there is none."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_timeouts(PyObject* module) { return PyModule_AddFunctions(module, module_fns); }

}  // namespace anyio
