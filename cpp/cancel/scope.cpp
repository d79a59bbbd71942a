// CancelScope: one type for both backends. On asyncio the scope tree and the
// delivery of cancellation (delivery.cpp) do the work and this file is the
// type: entering, leaving, cancel() and the properties. On Trio the scope wraps
// a trio.CancelScope through the hooks of anyio._cancel_trio, since Trio
// already does level cancellation natively.
#include <cmath>
#include <cstring>

#include "cancel/core.hpp"
#include "common/runtime.hpp"

namespace anyio {

PyTypeObject* CancelScopeType = nullptr;

namespace {

// BaseExceptionGroup: a builtin from Python 3.11 on; on 3.10 the class of the
// exceptiongroup backport (a dependency there), looked up once.
PyTypeObject* base_exception_group_type() {
#if PY_VERSION_HEX >= 0x030B0000
  return reinterpret_cast<PyTypeObject*>(PyExc_BaseExceptionGroup);
#else
  static PyObject* type = nullptr;
  if (!type) {
    PyObject* mod = PyImport_ImportModule("exceptiongroup");
    if (mod) {
      type = PyObject_GetAttrString(mod, "BaseExceptionGroup");
      Py_DECREF(mod);
    }
    if (!type) return nullptr;
  }
  return reinterpret_cast<PyTypeObject*>(type);
#endif
}

// --- Python type ------------------------------------------------------------

int cs_traverse(CancelScope* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->reason);
  Py_VISIT(self->cancel_msg);
  Py_VISIT(reinterpret_cast<PyObject*>(self->parent));
  Py_VISIT(self->host_owner);
  Py_VISIT(reinterpret_cast<PyObject*>(self->loop));
  Py_VISIT(self->trio_scope);
  return 0;
}

void cs_release_links(CancelScope* self) {
  if (self->loop) heap_remove(self->loop, self);
  if (self->parent) child_unlink(self->parent, self);
  Py_CLEAR(self->parent);
  self->host = nullptr;
  Py_CLEAR(self->host_owner);
  Py_CLEAR(self->loop);
}

int cs_clear(CancelScope* self) {
  cs_release_links(self);
  Py_CLEAR(self->reason);
  Py_CLEAR(self->cancel_msg);
  Py_CLEAR(self->trio_scope);
  return 0;
}

// A scope is made and dropped for every `with`, timeout and task group;
// recycling a few of them keeps the allocator and the zeroing of a fresh GC
// object off that path. Only exact CancelScope instances (not subclasses) are
// kept; the GIL guards the list.
constexpr int kScopeFreelistMax = 64;
CancelScope* g_scope_free[kScopeFreelistMax];
int g_scope_nfree = 0;

void cs_dealloc(CancelScope* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  cs_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  if (tp == CancelScopeType && g_scope_nfree < kScopeFreelistMax) {
    g_scope_free[g_scope_nfree++] = self;
  } else {
    tp->tp_free(self);
  }
  Py_DECREF(tp);
}

}  // namespace

CancelScope* cs_alloc(PyTypeObject* type, double deadline, bool shield) {
  CancelScope* self;
  if (type == CancelScopeType && g_scope_nfree > 0) {
    self = g_scope_free[--g_scope_nfree];
    auto* body = reinterpret_cast<char*>(self) + sizeof(PyObject);
    std::memset(body, 0, sizeof(CancelScope) - sizeof(PyObject));
    PyObject_Init(reinterpret_cast<PyObject*>(self), type);
    PyObject_GC_Track(self);
  } else {
    self = reinterpret_cast<CancelScope*>(type->tp_alloc(type, 0));
    if (!self) return nullptr;
  }
  self->deadline = deadline;
  self->created_at = -1;
  self->heap_index = -1;
  self->shield = shield;
  Py_INCREF(Py_None);
  self->reason = Py_None;
  return self;
}

int parse_deadline(PyObject* obj, double* out) {
  if (obj == nullptr) {
    *out = kInfinity;
    return 0;
  }
  double v = as_double(obj);
  if (v == -1.0 && PyErr_Occurred()) return -1;
  if (std::isnan(v)) {
    PyErr_SetString(PyExc_ValueError, "deadline must not be NaN");
    return -1;
  }
  *out = v;
  return 0;
}

namespace {

// CancelScope(*, deadline=math.inf, shield=False), through vectorcall.
PyObject* cs_vectorcall(PyObject* type, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (nargs != 0) {
    PyErr_Format(PyExc_TypeError, "CancelScope() takes no positional arguments (%zd given)", nargs);
    return nullptr;
  }
  PyObject* deadline_obj = nullptr;
  int shield = 0;
  if (kwnames) {
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; ++i) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, i);
      PyObject* val = args[i];
      if (PyUnicode_CompareWithASCIIString(key, "deadline") == 0) {
        deadline_obj = val;
      } else if (PyUnicode_CompareWithASCIIString(key, "shield") == 0) {
        shield = PyObject_IsTrue(val);
        if (shield < 0) return nullptr;
      } else {
        PyErr_Format(PyExc_TypeError, "CancelScope() got an unexpected keyword argument '%U'", key);
        return nullptr;
      }
    }
  }
  double deadline;
  if (parse_deadline(deadline_obj, &deadline) < 0) return nullptr;
  return reinterpret_cast<PyObject*>(cs_alloc(reinterpret_cast<PyTypeObject*>(type), deadline, shield));
}

PyObject* cs_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"deadline", "shield", nullptr};
  PyObject* deadline_obj = nullptr;
  int shield = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$Op:CancelScope", const_cast<char**>(kwlist),
                                   &deadline_obj, &shield))
    return nullptr;
  double deadline;
  if (parse_deadline(deadline_obj, &deadline) < 0) return nullptr;
  return reinterpret_cast<PyObject*>(cs_alloc(type, deadline, shield));
}

PyObject* cs_enter(PyObject* self_obj, PyObject* /*unused*/) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (self->state != ScopeState::New) {
    return raise(PyExc_RuntimeError, "Each CancelScope may only be used for a single 'with' block");
  }
  TaskState* t = tls_current;
  if (!t) {
    bool on_trio;
    t = scope_task_state(&on_trio);
    if (on_trio) return call_hook(hooks.trio_scope_enter, "trio_scope_enter", {self_obj});
    if (!t) return nullptr;
  }
  self->state = ScopeState::Active;
  self->host = t;
  Py_INCREF(t->owner);
  self->host_owner = t->owner;
  CancelScope* parent = t->scope ? t->scope : t->root;
  if (parent) {
    Py_INCREF(parent);
    self->parent = parent;
    child_link(parent, self);
  }
  task_unlink(t);
  Py_INCREF(self);
  Py_XSETREF(t->scope, self);
  task_link(t, self);
  Py_INCREF(t->loop);
  self->loop = t->loop;
  if (self->deadline != kInfinity) {
    // Timeout helpers read the clock when they build the scope; entering it
    // follows at once, so that reading stands in for a second one. A deadline
    // passing in between is caught by the timer on the next loop iteration.
    double now = self->created_at;
    if (now < 0) now = loop_time(self->loop);
    if (now == -1 && PyErr_Occurred()) return nullptr;
    if (self->deadline <= now) {
      if (scope_do_cancel(self, nullptr, true) < 0) return nullptr;
    } else if (heap_add(self->loop, self) < 0) {
      return nullptr;
    }
  } else if (self->cancel_called && !t->wrapped) {
    // Cancelled before entry: a foreign task needs a delivery once it awaits.
    if (deliver(t) < 0) return nullptr;
  }
  Py_INCREF(self);
  return self_obj;
}

PyObject* timeout_error(CancelScope* self) {
  if (self->reason != Py_None)
    PyErr_SetObject(PyExc_TimeoutError, self->reason);
  else
    PyErr_SetNone(PyExc_TimeoutError);
  return nullptr;
}

// Leaving a scope (__exit__) takes the steps below, in this order.

// 1. The task leaving must be the one that entered, with this scope innermost.
// Returns it, or nullptr with RuntimeError set.
TaskState* exiting_task(CancelScope* self) {
  if (self->state != ScopeState::Active) {
    PyErr_SetString(PyExc_RuntimeError, "This cancel scope is not active");
    return nullptr;
  }
  TaskState* t = tls_current;
  if (!t) {
    t = current_task_state(false);
    if (!t) PyErr_Clear();
  }
  if (t != self->host) {
    PyErr_SetString(PyExc_RuntimeError,
                    "Attempted to exit cancel scope in a different task than it was entered in");
    return nullptr;
  }
  if (t->scope != self) {
    PyErr_SetString(PyExc_RuntimeError,
                    "Attempted to exit a cancel scope that isn't the current tasks's current cancel scope");
    return nullptr;
  }
  return t;
}

// 2. Pop: the task's innermost scope becomes the previous one of this task.
void pop_scope(CancelScope* self, TaskState* t) {
  task_unlink(t);
  CancelScope* parent = self->parent;
  CancelScope* prev = (parent && parent->host == t && parent->state == ScopeState::Active) ? parent : nullptr;
  Py_XINCREF(prev);
  Py_XSETREF(t->scope, prev);
  task_link(t, t->scope ? t->scope : t->root);
  self->state = ScopeState::Exited;
}

// 3. Is the exception leaving the block a scope's cancellation? Sets `*ours`
// if it is one, or if it is an exception group holding some; for a group,
// `*rest` becomes the group of everything else (None if nothing is left).
int match_cancellation(PyObject* exc, bool* ours, Ref* rest) {
  if (is_scope_cancelled_error(exc)) {
    *ours = true;
    return 0;
  }
  PyTypeObject* group_type = base_exception_group_type();
  if (!group_type) return -1;
  if (!PyObject_TypeCheck(exc, group_type)) return 0;
  Ref split = Ref::steal(call_hook(hooks.split_scope_cancellations, "split_scope_cancellations", {exc}));
  if (!split) return -1;
  if (!PyTuple_Check(split.get()) || PyTuple_GET_SIZE(split.get()) != 2) {
    PyErr_SetString(PyExc_TypeError, "split_scope_cancellations must return a 2-tuple");
    return -1;
  }
  *ours = PyTuple_GET_ITEM(split.get(), 0) == Py_True;
  *rest = Ref::borrow(PyTuple_GET_ITEM(split.get(), 1));
  return 0;
}

// 4. The outermost cancelled scope a cancellation can reach is the one that
// ends it: no cancelled scope outside reaches through to the task.
bool ends_cancellation(CancelScope* self) {
  return self->shield || !self->parent || !effective_cancel_from(self->parent);
}

// 5. The scope that ends a cancellation gives back the task.cancel() requests
// made on its behalf (asyncio's own counting -- asyncio.timeout, TaskGroup --
// stays right). The error stays `*ours` to swallow unless someone else's
// native cancellation arrived on top of ours (still pending, or merged into
// our error by asyncio).
int give_back_native_cancels(TaskState* t, bool* ours) {
  PyObject* pending = PyObject_GetAttr(t->task, G.s_must_cancel);
  if (!pending) {
    PyErr_Clear();
  } else {
    if (pending == Py_True) *ours = false;
    Py_DECREF(pending);
  }
  if (*ours && t->cancel_baseline >= 0) {
    Ref n = Ref::steal(call_method0(t->task, G.s_cancelling));
    if (!n) return -1;
    long requested = PyLong_AsLong(n.get());
    if (requested == -1 && PyErr_Occurred()) return -1;
    if (requested > t->cancel_baseline + t->native_cancels) *ours = false;
  }
#if PY_VERSION_HEX < 0x030B0000
  t->native_cancels = 0;  // asyncio counts cancel requests (Task.uncancel) from 3.11 on
#endif
  while (t->native_cancels > 0) {
    t->native_cancels--;
    Ref r = Ref::steal(call_method0(t->task, G.s_uncancel));
    if (!r) return -1;
  }
  return 0;
}

// 6. Unlink the scope, deliver what still reaches a foreign task, and say how
// the block ends: TimeoutError for a fail_after that fired, the rest of a group
// whose cancellations were ours, or whether the exception is swallowed.
PyObject* finish_exit(CancelScope* self, TaskState* t, bool ours, bool swallow, Ref& rest) {
  if (swallow && !effective_cancel(t)) t->cancel_baseline = -1;
  bool timed_out = swallow && self->fail_on_timeout && self->deadline_reached;
  bool still_cancelled = !t->wrapped && !t->finished && effective_cancel(t);
  cs_release_links(self);
  if (still_cancelled && deliver(t) < 0) return nullptr;
  if (timed_out) return timeout_error(self);
  if (ours && !swallow && rest && rest.get() != Py_None) {
    // Raise what is left of the group with its own context: clear the handled
    // exception first so raising here does not chain the original group.
    PyErr_SetExcInfo(nullptr, nullptr, nullptr);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(rest.get())), rest.get());
    return nullptr;
  }
  return PyBool_FromLong(swallow);
}

PyObject* cs_exit(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (nargs != 3) return raise(PyExc_TypeError, "__exit__ expects 3 arguments");
  if (self->trio_scope) {
    return call_hook(hooks.trio_scope_exit, "trio_scope_exit", {self_obj, args[0], args[1], args[2]});
  }
  TaskState* t = exiting_task(self);
  if (!t) return nullptr;
  pop_scope(self, t);
  PyObject* exc = args[1];
  bool ours = false;
  Ref rest;  // a group left after taking our cancellations out
  if (self->cancel_called && exc != Py_None && match_cancellation(exc, &ours, &rest) < 0) return nullptr;
  bool swallow = false;
  if (ours && ends_cancellation(self)) {
    if (t->task && give_back_native_cancels(t, &ours) < 0) return nullptr;
    if (ours) {
      swallow = !rest || rest.get() == Py_None;
      self->cancelled_caught = 1;
    }
  }
  return finish_exit(self, t, ours, swallow, rest);
}

PyObject* cs_cancel(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  PyObject* reason = Py_None;
  if (nargs > 1) return raise(PyExc_TypeError, "cancel() takes at most 1 argument");
  if (nargs == 1) reason = args[0];
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "reason") != 0)
        return raise(PyExc_TypeError, "cancel() got an unexpected keyword argument");
      reason = args[nargs + i];
    }
  }
  if (self->trio_scope) {
    return call_hook(hooks.trio_scope_cancel, "trio_scope_cancel", {self_obj, reason});
  }
  // Upstream takes any object and shows it in the message: keep its str().
  Ref text;
  if (reason != Py_None && !PyUnicode_Check(reason)) {
    text = Ref::steal(PyObject_Str(reason));
    if (!text) return nullptr;
    reason = text.get();
  }
  if (scope_do_cancel(self, reason, false) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* trio_attr(CancelScope* self, const char* name) {
  return PyObject_GetAttrString(self->trio_scope, name);
}

PyObject* cs_get_deadline(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (self->trio_scope) return trio_attr(self, "deadline");
  return PyFloat_FromDouble(self->deadline);
}

int cs_set_deadline(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete deadline");
    return -1;
  }
  double v;
  if (parse_deadline(value, &v) < 0) return -1;
  if (self->trio_scope) return PyObject_SetAttrString(self->trio_scope, "deadline", value);
  self->deadline = v;
  if (self->state != ScopeState::Active || !self->loop) return 0;
  heap_remove(self->loop, self);
  if (v == kInfinity) return 0;
  double now = loop_time(self->loop);
  if (now == -1 && PyErr_Occurred()) return -1;
  if (v <= now) return scope_do_cancel(self, nullptr, true);
  return heap_add(self->loop, self);
}

PyObject* cs_get_shield(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (self->trio_scope) return trio_attr(self, "shield");
  return PyBool_FromLong(self->shield);
}

int cs_set_shield(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (!value || !PyBool_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "shield must be a bool");
    return -1;
  }
  if (self->trio_scope) return PyObject_SetAttrString(self->trio_scope, "shield", value);
  bool was = self->shield;
  self->shield = value == Py_True;
  // Dropping the shield exposes the tasks below to a cancelled parent.
  if (was && !self->shield && self->state == ScopeState::Active && effective_cancel_from(self)) {
    return deliver_tree(self);
  }
  return 0;
}

PyObject* cs_get_cancel_called(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (self->trio_scope) return trio_attr(self, "cancel_called");
  return PyBool_FromLong(self->cancel_called);
}

PyObject* cs_get_cancelled_caught(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (self->trio_scope) return trio_attr(self, "cancelled_caught");
  return PyBool_FromLong(self->cancelled_caught);
}

// Raw fields for anyio._cancel_trio, which builds the trio scope from them.
PyObject* cs_get_raw(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  return Py_BuildValue("(dOOO)", self->deadline, self->shield ? Py_True : Py_False,
                       self->cancel_called ? Py_True : Py_False, self->reason);
}

PyObject* cs_get_trio_scope(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  PyObject* r = self->trio_scope ? self->trio_scope : Py_None;
  Py_INCREF(r);
  return r;
}

int cs_set_trio_scope(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (value == Py_None) value = nullptr;
  Py_XINCREF(value);
  Py_XSETREF(self->trio_scope, value);
  self->state = value ? ScopeState::Active : ScopeState::Exited;
  return 0;
}

PyObject* cs_get_fail(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<CancelScope*>(self_obj)->fail_on_timeout);
}

PyObject* cs_get_deadline_reached(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<CancelScope*>(self_obj)->deadline_reached);
}

PyObject* cs_get_reason(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  Py_INCREF(self->reason);
  return self->reason;
}

PyObject* cs_repr(PyObject* self_obj) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  const char* state = self->state == ScopeState::New      ? "new"
                      : self->state == ScopeState::Active ? "active"
                                                          : "exited";
  PyObject* dl = PyFloat_FromDouble(self->deadline);
  if (!dl) return nullptr;
  PyObject* r = PyUnicode_FromFormat("<%s %s deadline=%R shield=%s cancel_called=%s at %p>",
                                     Py_TYPE(self)->tp_name, state, dl, self->shield ? "True" : "False",
                                     self->cancel_called ? "True" : "False", self_obj);
  Py_DECREF(dl);
  return r;
}

PyMethodDef cs_methods[] = {
    {"__enter__", cs_enter, METH_NOARGS, nullptr},
    {"__exit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(cs_exit)), METH_FASTCALL,
     nullptr},
    {"cancel", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(cs_cancel)),
     METH_FASTCALL | METH_KEYWORDS,
     "cancel(reason=None)\n--\n\nCancel this scope immediately; `reason` goes into the "
     "cancellation message."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef cs_getset[] = {
    {"deadline", cs_get_deadline, cs_set_deadline,
     "The time (on the event loop's clock) at which this scope cancels itself.", nullptr},
    {"shield", cs_get_shield, cs_set_shield,
     "True if cancellation from enclosing scopes does not reach inside.", nullptr},
    {"cancel_called", cs_get_cancel_called, nullptr, "True if cancel() was called or the deadline passed.",
     nullptr},
    {"cancelled_caught", cs_get_cancelled_caught, nullptr,
     "True if this scope caught the cancellation it caused.", nullptr},
    {"_raw", cs_get_raw, nullptr, nullptr, nullptr},
    {"_trio_scope", cs_get_trio_scope, cs_set_trio_scope, nullptr, nullptr},
    {"_fail_on_timeout", cs_get_fail, nullptr, nullptr, nullptr},
    {"_deadline_reached", cs_get_deadline_reached, nullptr, nullptr, nullptr},
    {"_reason", cs_get_reason, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef cs_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(CancelScope, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot cs_slots[] = {
    {Py_tp_doc, const_cast<char*>("CancelScope(*, deadline=math.inf, shield=False)\n--\n\n"
                                  "Wraps a block of code that can be cancelled, by cancel() or when the "
                                  "deadline passes.")},
    {Py_tp_new, reinterpret_cast<void*>(cs_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(cs_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(cs_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(cs_clear)},
    {Py_tp_methods, cs_methods},
    {Py_tp_getset, cs_getset},
    {Py_tp_repr, reinterpret_cast<void*>(cs_repr)},
    {Py_tp_members, cs_members},
    {0, nullptr},
};

PyType_Spec cs_spec = {
    "anyio.CancelScope",
    sizeof(CancelScope),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    cs_slots,
};

}  // namespace

PyObject* scope_enter(CancelScope* s) { return cs_enter(reinterpret_cast<PyObject*>(s), nullptr); }

PyObject* scope_exit(CancelScope* s, PyObject* type, PyObject* value, PyObject* tb) {
  PyObject* args[] = {type, value, tb};
  return cs_exit(reinterpret_cast<PyObject*>(s), args, 3);
}

PyObject* new_detached_scope() {
  return reinterpret_cast<PyObject*>(cs_alloc(CancelScopeType, kInfinity, false));
}

int register_cancel(PyObject* module) {
  if (register_loop_state(module) < 0) return -1;
  CancelScopeType = add_type(module, &cs_spec);
  if (!CancelScopeType) return -1;
  CancelScopeType->tp_vectorcall = cs_vectorcall;
  return register_timeouts(module);
}

}  // namespace anyio
