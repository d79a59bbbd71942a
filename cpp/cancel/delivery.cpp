// The scope tree and how a cancellation reaches the tasks below a scope: which
// scope's cancellation reaches a task (effective_cancel), the task lists each
// scope keeps, the CancelledError a scope delivers and how it is recognised
// again, and the task.cancel() calls that deliver it.
#include <cstdio>
#include <cstring>

#include "cancel/core.hpp"

namespace anyio {

namespace {

// Every CancelledError a scope delivers starts with this and the scope's
// address: the scope that catches it recognises its own.
constexpr const char kMarker[] = "Cancelled via cancel scope ";

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

}  // namespace

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
  if (s->state != ScopeState::Active) return 0;
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

}  // namespace anyio
