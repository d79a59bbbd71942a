// CancelScope: one type for both backends. On asyncio the scope tree and the
// delivery of cancellation are implemented here; on Trio the scope wraps a
// trio.CancelScope through the Python glue (anyio._glue), since Trio already
// does level cancellation natively.
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

#include "cancel/core.hpp"
#include "common/trio.hpp"

namespace anyio {

PyTypeObject* CancelScopeType = nullptr;
int register_loop_state(PyObject* module);

namespace {

constexpr const char kMarker[] = "Cancelled via cancel scope ";

inline double inf() { return HUGE_VAL; }

PyObject* glue_call(const char* name, PyObject* const* args, size_t nargs) {
  // Glue functions are looked up once per name; the module keeps them alive.
  static std::unordered_map<std::string, PyObject*> cache;
  auto it = cache.find(name);
  PyObject* fn;
  if (it == cache.end()) {
    fn = PyObject_GetAttrString(G.glue, name);
    if (!fn) return nullptr;
    cache.emplace(name, fn);
  } else {
    fn = it->second;
  }
  return PyObject_Vectorcall(fn, args, nargs, nullptr);
}

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

bool on_trio() {
  // Only asked where no asyncio loop runs in this thread.
  int r = trio_running();
  if (r < 0) PyErr_Clear();
  return r == 1;
}

PyObject* no_loop_error() { return raise_no_event_loop(); }

void child_link(CancelScope* parent, CancelScope* s) {
  s->sib_prev = nullptr;
  s->sib_next = parent->first_child;
  if (parent->first_child) parent->first_child->sib_prev = s;
  parent->first_child = s;
}

void child_unlink(CancelScope* parent, CancelScope* s) {
  if (s->sib_prev)
    s->sib_prev->sib_next = s->sib_next;
  else if (parent && parent->first_child == s)
    parent->first_child = s->sib_next;
  if (s->sib_next) s->sib_next->sib_prev = s->sib_prev;
  s->sib_prev = s->sib_next = nullptr;
}

// Collects the owners of every task that `s`'s cancellation reaches, in the
// order the tasks joined (the lists are built newest first, so walk them from
// the far end): tasks learn of a cancellation in the order they were started.
void collect_tasks(CancelScope* s, std::vector<PyObject*>& out) {
  TaskState* t = s->first_task;
  while (t && t->lnext) t = t->lnext;
  for (; t; t = t->lprev) {
    Py_INCREF(t->owner);
    out.push_back(t->owner);
  }
  CancelScope* c = s->first_child;
  while (c && c->sib_next) c = c->sib_next;
  for (; c; c = c->sib_prev) {
    if (!c->shield) collect_tasks(c, out);
  }
}

int deliver_tree(CancelScope* s) {
  std::vector<PyObject*> owners;
  collect_tasks(s, owners);
  int rc = 0;
  for (PyObject* o : owners) {
    if (rc == 0) {
      // The owner embeds its TaskState right after the object header in both
      // owner types (HostState, TaskCoro).
      TaskState* t = state_of_owner(o);
      rc = deliver(t);
    }
    Py_DECREF(o);
  }
  return rc;
}

PyObject* build_cancel_msg(CancelScope* s, PyObject* reason) {
  char head[64];
  std::snprintf(head, sizeof head, "%s%zx", kMarker, reinterpret_cast<size_t>(s));
  PyObject* msg = PyUnicode_FromString(head);
  if (!msg) return nullptr;
  // Name the task that cancelled, as upstream does, so tracebacks say who.
  PyObject* loop = running_loop();
  if (loop) {
    PyObject* task = PyObject_CallOneArg(G.current_task, loop);
    if (!task) {
      Py_DECREF(msg);
      return nullptr;
    }
    if (task != Py_None) {
      PyObject* m2 = PyUnicode_FromFormat("%U by %R", msg, task);
      Py_DECREF(msg);
      msg = m2;
    }
    Py_DECREF(task);
    if (!msg) return nullptr;
  } else if (PyErr_Occurred()) {
    Py_DECREF(msg);
    return nullptr;
  }
  if (reason && reason != Py_None) {
    PyObject* m2 = PyUnicode_FromFormat("%U; reason: %S", msg, reason);
    Py_DECREF(msg);
    msg = m2;
  }
  return msg;
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
    *out = inf();
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
  if (self->state != SCOPE_NEW) {
    return raise(PyExc_RuntimeError, "Each CancelScope may only be used for a single 'with' block");
  }
  TaskState* t = tls_current;
  if (!t) {
    PyObject* loop = running_loop();
    if (!loop) {
      if (PyErr_Occurred()) return nullptr;
      if (on_trio()) {
        PyObject* args[] = {self_obj};
        return glue_call("trio_scope_enter", args, 1);
      }
      return no_loop_error();
    }
    t = current_task_state(true);
    if (!t) return nullptr;
  }
  self->state = SCOPE_ACTIVE;
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
  if (self->deadline != inf()) {
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

PyObject* cs_exit(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<CancelScope*>(self_obj);
  if (nargs != 3) return raise(PyExc_TypeError, "__exit__ expects 3 arguments");
  if (self->trio_scope) {
    PyObject* gargs[] = {self_obj, args[0], args[1], args[2]};
    return glue_call("trio_scope_exit", gargs, 4);
  }
  if (self->state != SCOPE_ACTIVE) return raise(PyExc_RuntimeError, "This cancel scope is not active");
  TaskState* t = tls_current;
  if (!t) {
    t = current_task_state(false);
    if (!t) {
      PyErr_Clear();
      t = nullptr;
    }
  }
  if (t != self->host) {
    return raise(PyExc_RuntimeError,
                 "Attempted to exit cancel scope in a different task than it was entered in");
  }
  if (t->scope != self) {
    return raise(PyExc_RuntimeError,
                 "Attempted to exit a cancel scope that isn't the current tasks's current cancel scope");
  }
  // Pop: the task's innermost scope becomes the previous one of this task.
  task_unlink(t);
  CancelScope* parent = self->parent;
  CancelScope* prev = (parent && parent->host == t && parent->state == SCOPE_ACTIVE) ? parent : nullptr;
  Py_XINCREF(prev);
  Py_XSETREF(t->scope, prev);
  task_link(t, t->scope ? t->scope : t->root);
  self->state = SCOPE_EXITED;

  PyObject* exc = args[1];
  bool swallow = false;
  PyObject* rest = nullptr;  // a group left after taking our cancellations out
  bool ours = false;
  if (self->cancel_called && exc != Py_None) {
    if (is_scope_cancelled_error(exc)) {
      ours = true;
    } else if (PyTypeObject* group_type = base_exception_group_type(); !group_type) {
      return nullptr;
    } else if (PyObject_TypeCheck(exc, group_type)) {
      PyObject* gargs[] = {exc};
      PyObject* r = glue_call("split_scope_cancellations", gargs, 1);
      if (!r) return nullptr;
      ours = PyTuple_GET_ITEM(r, 0) == Py_True;
      rest = PyTuple_GET_ITEM(r, 1);
      Py_INCREF(rest);
      Py_DECREF(r);
    }
  }
  // The outermost cancelled scope a cancellation can reach is the one that
  // ends it: it gives back the task.cancel() requests made on its behalf
  // (asyncio's own counting -- asyncio.timeout, TaskGroup -- stays right) and
  // swallows the error, unless someone else's native cancellation arrived on
  // top of ours (still pending, or merged into our error by asyncio).
  bool catching = ours && !(!self->shield && parent && effective_cancel_from(parent));
  if (catching && t->task) {
    PyObject* pending = PyObject_GetAttr(t->task, G.s_must_cancel);
    if (!pending) {
      PyErr_Clear();
    } else {
      if (pending == Py_True) ours = false;
      Py_DECREF(pending);
    }
    if (ours && t->cancel_baseline >= 0) {
      PyObject* n = call_method0(t->task, G.s_cancelling);
      if (!n) {
        Py_XDECREF(rest);
        return nullptr;
      }
      long requested = PyLong_AsLong(n);
      Py_DECREF(n);
      if (requested > t->cancel_baseline + t->native_cancels) ours = false;
    }
#if PY_VERSION_HEX < 0x030B0000
    t->native_cancels = 0;  // asyncio counts cancel requests (Task.uncancel) from 3.11 on
#endif
    while (t->native_cancels > 0) {
      t->native_cancels--;
      PyObject* r = call_method0(t->task, G.s_uncancel);
      if (!r) {
        Py_XDECREF(rest);
        return nullptr;
      }
      Py_DECREF(r);
    }
  }
  if (catching && ours) {
    swallow = rest == nullptr || rest == Py_None;
    self->cancelled_caught = 1;
  }
  if (swallow && !effective_cancel(t)) t->cancel_baseline = -1;
  bool timed_out = swallow && self->fail_on_timeout && self->deadline_reached;
  bool still_cancelled = !t->wrapped && !t->finished && effective_cancel(t);
  cs_release_links(self);
  if (still_cancelled && deliver(t) < 0) {
    Py_XDECREF(rest);
    return nullptr;
  }
  if (timed_out) {
    Py_XDECREF(rest);
    return timeout_error(self);
  }
  if (ours && !swallow && rest && rest != Py_None) {
    // Raise what is left of the group with its own context: clear the handled
    // exception first so raising here does not chain the original group.
    PyErr_SetExcInfo(nullptr, nullptr, nullptr);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(rest)), rest);
    Py_DECREF(rest);
    return nullptr;
  }
  Py_XDECREF(rest);
  if (swallow) Py_RETURN_TRUE;
  Py_RETURN_FALSE;
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
    PyObject* gargs[] = {self_obj, reason};
    return glue_call("trio_scope_cancel", gargs, 2);
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
  if (self->state != SCOPE_ACTIVE || !self->loop) return 0;
  heap_remove(self->loop, self);
  if (v == inf()) return 0;
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
  if (was && !self->shield && self->state == SCOPE_ACTIVE && effective_cancel_from(self)) {
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

// Raw fields for the Trio glue, which keeps them in step with the trio scope.
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
  self->state = value ? SCOPE_ACTIVE : SCOPE_EXITED;
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
  const char* state = self->state == SCOPE_NEW ? "new" : self->state == SCOPE_ACTIVE ? "active" : "exited";
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

// fail_after/fail_at/move_on_after/move_on_at build scopes directly: they are
// on hot paths and a generator-based context manager would cost more than the
// scope itself.
PyObject* make_timeout_scope(PyObject* deadline_obj, PyObject* shield_obj, PyObject* reason, bool relative,
                             bool fail) {
  double value = inf();
  double created_at = -1;
  if (deadline_obj != Py_None) {
    value = as_double(deadline_obj);
    if (value == -1.0 && PyErr_Occurred()) return nullptr;
    if (std::isnan(value)) return raise(PyExc_ValueError, "deadline must not be NaN");
  }
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
      PyObject* args[] = {};
      PyObject* now_obj = glue_call("current_time", args, 0);
      if (!now_obj) return nullptr;
      now = PyFloat_AsDouble(now_obj);
      Py_DECREF(now_obj);
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
    PyObject* loop = running_loop();
    if (!loop) {
      if (PyErr_Occurred()) return nullptr;
      PyObject* args[] = {};
      return glue_call("trio_current_effective_deadline", args, 0);
    }
    t = current_task_state(true);
    if (!t) return nullptr;
  }
  double best = inf();
  for (CancelScope* s = t->scope ? t->scope : t->root; s; s = s->parent) {
    if (s->cancel_called) {
      best = -inf();
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

CancelScope* effective_cancel_from(CancelScope* s) {
  for (; s; s = s->parent) {
    if (s->cancel_called) return s;
    if (s->shield) return nullptr;
  }
  return nullptr;
}

CancelScope* effective_cancel(TaskState* t) {
  if (t->shielded_yield) return nullptr;
  // The task's own scopes first, then the cancellation of the task alone
  // (TaskHandle.cancel()), then the scopes it was spawned below.
  CancelScope* s = t->scope;
  for (; s && s->host == t; s = s->parent) {
    if (s->cancel_called) return s;
    if (s->shield) return nullptr;
  }
  if (t->self_scope) return t->self_scope;
  return effective_cancel_from(s ? s : t->root);
}

PyObject* scope_enter(CancelScope* s) { return cs_enter(reinterpret_cast<PyObject*>(s), nullptr); }

PyObject* scope_exit(CancelScope* s, PyObject* type, PyObject* value, PyObject* tb) {
  PyObject* args[] = {type, value, tb};
  return cs_exit(reinterpret_cast<PyObject*>(s), args, 3);
}

PyObject* new_detached_scope() {
  return reinterpret_cast<PyObject*>(cs_alloc(CancelScopeType, inf(), false));
}

bool has_marker(PyObject* exc);

// Ours: a CancelledError carrying a cancel scope's message, or one raised
// while handling such an error (`raise CancelledError from exc`).
bool is_scope_cancelled_error(PyObject* exc) {
  if (!PyObject_TypeCheck(exc, reinterpret_cast<PyTypeObject*>(G.CancelledError))) return false;
  if (has_marker(exc)) return true;
  auto* base = reinterpret_cast<PyBaseExceptionObject*>(exc);
  for (PyObject* link : {base->cause, base->context}) {
    if (link && PyObject_TypeCheck(link, reinterpret_cast<PyTypeObject*>(G.CancelledError)) &&
        has_marker(link))
      return true;
  }
  return false;
}

bool has_marker(PyObject* exc) {
  PyObject* args = reinterpret_cast<PyBaseExceptionObject*>(exc)->args;
  if (!args || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1) return false;
  PyObject* msg = PyTuple_GET_ITEM(args, 0);
  if (!PyUnicode_Check(msg)) return false;
  Py_ssize_t size = 0;
  const char* utf = PyUnicode_AsUTF8AndSize(msg, &size);
  if (!utf) {
    PyErr_Clear();
    return false;
  }
  size_t mlen = sizeof(kMarker) - 1;
  return static_cast<size_t>(size) >= mlen && std::strncmp(utf, kMarker, mlen) == 0;
}

void observe_cancel(TaskState* t) {
  if (t->cancel_baseline >= 0 || !t->task) return;
  PyObject* n = call_method0(t->task, G.s_cancelling);
  if (!n) {
    PyErr_Clear();
    return;
  }
  t->cancel_baseline = PyLong_AsLong(n);
  Py_DECREF(n);
  if (t->cancel_baseline < 0) {
    PyErr_Clear();
    t->cancel_baseline = -1;
  }
}

PyObject* make_cancelled_error(CancelScope* origin) {
  PyObject* msg = origin->cancel_msg ? origin->cancel_msg : Py_None;
  if (msg == Py_None) return PyObject_CallNoArgs(G.CancelledError);
  return PyObject_CallOneArg(G.CancelledError, msg);
}

int scope_do_cancel(CancelScope* s, PyObject* reason, bool from_deadline) {
  if (!s->cancel_called) {
    if (from_deadline) s->deadline_reached = 1;
    PyObject* why = reason;
    PyObject* deadline_reason = nullptr;
    if (from_deadline) {
      deadline_reason = PyUnicode_FromString("deadline exceeded");
      if (!deadline_reason) return -1;
      why = deadline_reason;
    }
    PyObject* msg = build_cancel_msg(s, why);
    Py_XDECREF(deadline_reason);
    if (!msg) return -1;
    Py_XSETREF(s->cancel_msg, msg);
    if (reason && reason != Py_None && s->reason == Py_None) {
      Py_INCREF(reason);
      Py_SETREF(s->reason, reason);
    }
    s->cancel_called = 1;
  }
  if (s->state != SCOPE_ACTIVE) return 0;
  if (s->loop) heap_remove(s->loop, s);
  return deliver_tree(s);
}

void task_link(TaskState* t, CancelScope* s) {
  t->home = s;
  t->lprev = nullptr;
  t->lnext = nullptr;
  if (!s) return;
  t->lnext = s->first_task;
  if (s->first_task) s->first_task->lprev = t;
  s->first_task = t;
}

void task_unlink(TaskState* t) {
  CancelScope* s = t->home;
  if (!s) return;
  if (t->lprev)
    t->lprev->lnext = t->lnext;
  else if (s->first_task == t)
    s->first_task = t->lnext;
  if (t->lnext) t->lnext->lprev = t->lprev;
  t->lprev = t->lnext = nullptr;
  t->home = nullptr;
}

void task_detach_all(TaskState* t) {
  task_unlink(t);
  Py_CLEAR(t->self_scope);
  Py_CLEAR(t->scope);
  Py_CLEAR(t->root);
  Py_CLEAR(t->waiting_on);
}

// Cancels the task the way asyncio's own code would, with task.cancel(): the
// future it waits on is cancelled (or, at a bare yield, its next step raises),
// and task.cancelling() counts the request, which the scope that swallows the
// error gives back with uncancel(). Returns -1 on error.
int cancel_task_natively(TaskState* t, CancelScope* origin) {
  PyObject* msg = origin->cancel_msg ? origin->cancel_msg : Py_None;
  PyObject* r = call_method1(t->task, G.s_cancel, msg);
  if (!r) return -1;
  if (r == Py_True) t->native_cancels++;
  Py_DECREF(r);
  return 0;
}

int deliver(TaskState* t) {
  if (t->finished || !t->task) return 0;
  CancelScope* origin = effective_cancel(t);
  if (!origin) return 0;
  observe_cancel(t);
  if (t->delivery_pending) return 0;
  PyObject* loop = t->loop ? t->loop->loop : nullptr;
  if (!loop || !t->loop->alive) return 0;
  bool is_current;
  if (t->wrapped) {
    // A wrapped task that is running now is cancelled by its wrapper when it
    // next suspends; one that has not started yet must first get to run (a
    // task cancelled before its first step never runs its body at all), so its
    // wrapper delivers at its first suspension too.
    if (tls_current == t || !t->started) return 0;
    is_current = false;
  } else {
    PyObject* current = running_loop() ? PyObject_CallOneArg(G.current_task, loop) : nullptr;
    if (!current && PyErr_Occurred()) return -1;
    is_current = current == t->task;
    Py_XDECREF(current);
  }
  if (!is_current) {
    PyObject* fw = PyObject_GetAttr(t->task, G.s_fut_waiter);
    if (!fw) return -1;
    bool scheduled_with_value = false;
    if (fw != Py_None) {
      PyObject* done = call_method0(fw, G.s_done);
      if (!done) {
        Py_DECREF(fw);
        return -1;
      }
      scheduled_with_value = done == Py_True;
      Py_DECREF(done);
    }
    Py_DECREF(fw);
    // A task about to resume with a value gets it first: anyio never cancels
    // a task that is scheduled to resume with a result.
    if (!scheduled_with_value && cancel_task_natively(t, origin) < 0) return -1;
  }
  t->delivery_pending = true;
  if (t->wrapped) return 0;  // the wrapper clears the flag and re-checks each step
  // A foreign task: look again once it has run (its wake-up is queued first).
  PyObject* r = call_method2(loop, G.s_call_soon, t->loop->recheck_cb, t->owner);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

int register_cancel(PyObject* module) {
  if (register_loop_state(module) < 0) return -1;
  CancelScopeType = add_type(module, &cs_spec);
  if (!CancelScopeType) return -1;
  CancelScopeType->tp_vectorcall = cs_vectorcall;
  if (PyModule_AddFunctions(module, module_fns) < 0) return -1;
  return 0;
}

}  // namespace anyio
