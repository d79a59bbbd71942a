// TaskCoro: the coroutine wrapper that asyncio's Task steps for every task this
// package spawns. It forwards send/throw to the user's coroutine and, because it
// sees each suspension, delivers level cancellation there: when the coroutine
// is about to suspend while its task is effectively cancelled, it calls
// task.cancel() with the scope's message, as asyncio code would. The Task then
// cancels the future it is handed (or, after a bare `yield` such as sleep(0),
// raises on its next step), so the error arrives through the loop. A task that
// is resumed with the value of a future gets the value (a result is never
// lost); the cancellation comes at its next suspension.
//
// Also here: spawning a wrapped task, and the module functions that look at or
// change the cancel state of a task (TaskHandle.cancel(), start()'s reparenting,
// the checks the Python side makes).

#include "cancel/core.hpp"
#include "common/awaitable.hpp"

namespace anyio {

PyTypeObject* TaskCoroType = nullptr;

namespace {

struct TaskCoro {
  PyObject_HEAD
  TaskState st;  // first after the header: deliver_tree relies on this layout
  PyObject* coro;
  PyObject* weakreflist;
};

void finish(TaskCoro* self) {
  self->st.finished = true;
  task_detach_all(&self->st);
  Py_CLEAR(self->st.task);  // breaks task -> coro -> state -> task
}

// A wrapper that no Task steps (one from wrap_coro(), driven by hand) has no
// task to cancel: the future it waits on is cancelled instead.
int cancel_awaited(PyObject* y, CancelScope* origin) {
  PyObject* cancel = PyObject_GetAttr(y, G.s_cancel);
  if (!cancel) {
    PyErr_Clear();
    return 0;
  }
  PyObject* msg = origin->cancel_msg ? origin->cancel_msg : Py_None;
  PyObject* r = PyObject_CallOneArg(cancel, msg);
  Py_DECREF(cancel);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

PySendResult after_step(TaskCoro* self, PySendResult r, PyObject** out) {
  if (r == PYGEN_NEXT) {
    PyObject* y = *out;
    // About to suspend while cancelled: cancel the task as asyncio's own code
    // would. The Task then cancels the future it is handed (or, for a bare
    // yield, raises on the next step), so the error arrives through the loop,
    // in the order asyncio code expects, and a coroutine that keeps swallowing
    // it cannot starve the loop.
    CancelScope* origin = effective_cancel(&self->st);
    if (origin) {
      observe_cancel(&self->st);
      if (self->st.task) {
        if (cancel_task_natively(&self->st, origin) < 0) PyErr_WriteUnraisable(self->st.task);
      } else if (y != Py_None && cancel_awaited(y, origin) < 0) {
        PyErr_WriteUnraisable(y);
      }
    }
  } else {
    finish(self);
  }
  return r;
}

// A wrapper made before its loop ran (anyio.run, the pytest runner) learns its
// task and loop on the first step.
int bind_lazily(TaskCoro* self) {
  if (self->st.task || self->st.finished) return 0;
  PyObject* loop = running_loop();
  if (!loop) return PyErr_Occurred() ? -1 : 0;
  if (!self->st.loop) {
    LoopState* ls = loop_state_for(loop);
    if (!ls) return -1;
    Py_INCREF(ls);
    self->st.loop = ls;
  }
  PyObject* task = PyObject_CallOneArg(G.current_task, loop);
  if (!task) return -1;
  if (task == Py_None) {
    Py_DECREF(task);
    return 0;
  }
  self->st.task = task;
  return 0;
}

PySendResult tc_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  if (self->st.finished || !self->coro) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  if (!self->st.task && bind_lazily(self) < 0) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  TaskState* prev = tls_current;
  tls_current = &self->st;
  self->st.delivery_pending = false;
  self->st.started = true;
  PySendResult r = PyIter_Send(self->coro, arg, out);
  r = after_step(self, r, out);
  tls_current = prev;
  return r;
}

PyObject* tc_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  if (self->st.finished || !self->coro) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
    return nullptr;
  }
  if (!self->st.task && bind_lazily(self) < 0) return nullptr;
  TaskState* prev = tls_current;
  tls_current = &self->st;
  self->st.delivery_pending = false;
  PyObject* out = nullptr;
  PySendResult r = forward_throw(self->coro, args, nargs, &out);
  r = after_step(self, r, &out);
  tls_current = prev;
  return send_result_to_python(r, out);
}

PyObject* tc_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  if (!self->coro) Py_RETURN_NONE;
  PyObject* r = call_method0(self->coro, G.s_close);
  finish(self);
  return r;
}

PyObject* forward_attr(PyObject* self_obj, void* name) {
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  return PyObject_GetAttrString(self->coro, static_cast<const char*>(name));
}

PyObject* tc_get_inner(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  Py_INCREF(self->coro);
  return self->coro;
}

PyObject* tc_repr(PyObject* self_obj) {
  auto* self = reinterpret_cast<TaskCoro*>(self_obj);
  return PyObject_Repr(self->coro);
}

int tc_traverse(TaskCoro* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->coro);
  return traverse_task_state(&self->st, visit, arg);
}

int tc_clear(TaskCoro* self) {
  clear_task_state(&self->st);
  Py_CLEAR(self->coro);
  return 0;
}

void tc_dealloc(TaskCoro* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  tc_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef tc_methods[] = {
    {"send", send_method_via_send<tc_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tc_throw)), METH_FASTCALL, nullptr},
    {"close", tc_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef tc_getset[] = {
    {"cr_code", forward_attr, nullptr, nullptr, const_cast<char*>("cr_code")},
    {"cr_frame", forward_attr, nullptr, nullptr, const_cast<char*>("cr_frame")},
    {"cr_running", forward_attr, nullptr, nullptr, const_cast<char*>("cr_running")},
    {"cr_await", forward_attr, nullptr, nullptr, const_cast<char*>("cr_await")},
    {"cr_suspended", forward_attr, nullptr, nullptr, const_cast<char*>("cr_suspended")},
    {"__name__", forward_attr, nullptr, nullptr, const_cast<char*>("__name__")},
    {"__qualname__", forward_attr, nullptr, nullptr, const_cast<char*>("__qualname__")},
    {"coro", tc_get_inner, nullptr, "The wrapped coroutine.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef tc_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TaskCoro, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot tc_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(tc_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<tc_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(tc_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(tc_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(tc_clear)},
    {Py_tp_methods, tc_methods},
    {Py_tp_getset, tc_getset},
    {Py_tp_members, tc_members},
    {Py_tp_repr, reinterpret_cast<void*>(tc_repr)},
    {0, nullptr},
};

PyType_Spec tc_spec = {
    "anyio._cpp.TaskCoro",
    sizeof(TaskCoro),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    tc_slots,
};

TaskCoro* new_wrapper(PyObject* coro) {
  auto* w = PyObject_GC_New(TaskCoro, TaskCoroType);
  if (!w) return nullptr;
  new (&w->st) TaskState();
  w->st.owner = reinterpret_cast<PyObject*>(w);
  w->st.wrapped = true;
  Py_INCREF(coro);
  w->coro = coro;
  w->weakreflist = nullptr;
  PyObject_GC_Track(w);
  return w;
}

}  // namespace

// Wraps `coro` and starts it as an asyncio task below `root` (may be None).
// Returns the new task. `done_cb` (may be null) is added as a done callback.
PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id) {
  PyObject* loop = running_loop();
  if (!loop) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return nullptr;
  }
  LoopState* ls = loop_state_for(loop);
  if (!ls) return nullptr;
  TaskCoro* w = new_wrapper(coro);
  if (!w) return nullptr;
  Py_INCREF(ls);
  w->st.loop = ls;
  w->st.parent_id = parent_id;
  if (root) {
    Py_INCREF(root);
    w->st.root = root;
    task_link(&w->st, root);
  }
  // Keyword-name tuples are built once; each spawn reuses them.
  static PyObject* kw_name = Py_BuildValue("(s)", "name");
  static PyObject* kw_name_context = Py_BuildValue("(ss)", "name", "context");
  PyObject* args[4] = {loop, reinterpret_cast<PyObject*>(w), name, context};
  PyObject* kwnames = (context && context != Py_None) ? kw_name_context : kw_name;
  if (!kwnames) {
    Py_DECREF(w);
    return nullptr;
  }
  PyObject* task =
      PyObject_VectorcallMethod(G.s_create_task, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
  if (!task) {
    // The coroutine never ran (or ran eagerly and the factory failed after):
    // close it, so it does not warn that it was never awaited.
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject* r = call_method0(w->coro, G.s_close);
    if (!r) PyErr_WriteUnraisable(w->coro);
    Py_XDECREF(r);
    PyErr_Restore(type, value, tb);
    finish(w);
    Py_DECREF(w);
    return nullptr;
  }
  if (!w->st.finished) {
    Py_INCREF(task);
    w->st.task = task;
  }
  Py_DECREF(w);
  if (done_cb) {
    PyObject* r = call_method1(task, G.s_add_done_callback, done_cb);
    if (!r) {
      Py_DECREF(task);
      return nullptr;
    }
    Py_DECREF(r);
  }
  return task;
}

namespace {

// wrap_coro(coro): a wrapper to hand to create_task/Runner.run yourself.
PyObject* fn_wrap_coro(PyObject*, PyObject* coro) { return reinterpret_cast<PyObject*>(new_wrapper(coro)); }

TaskState* state_of_task(PyObject* task) {
  PyObject* coro = PyObject_CallMethod(task, "get_coro", nullptr);
  if (!coro) return nullptr;
  TaskState* t = nullptr;
  if (Py_TYPE(coro) == TaskCoroType) {
    t = &reinterpret_cast<TaskCoro*>(coro)->st;
  }
  Py_DECREF(coro);
  if (!t) PyErr_SetString(PyExc_RuntimeError, "the task was not spawned by anyio");
  return t;
}

// cancel_task(task, reason=None): cancel one task spawned by a task group,
// as if its body ran in a cancel scope of its own (TaskHandle.cancel()).
PyObject* fn_cancel_task(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) return raise(PyExc_TypeError, "cancel_task(task, reason=None)");
  TaskState* t = state_of_task(args[0]);
  if (!t) return nullptr;
  if (t->finished || t->self_scope) Py_RETURN_NONE;
  PyObject* scope = new_detached_scope();
  if (!scope) return nullptr;
  if (scope_do_cancel(reinterpret_cast<CancelScope*>(scope), nargs == 2 ? args[1] : Py_None, false) < 0) {
    Py_DECREF(scope);
    return nullptr;
  }
  t->self_scope = reinterpret_cast<CancelScope*>(scope);
  if (deliver(t) < 0) return nullptr;
  Py_RETURN_NONE;
}

// reparent_task(task, scope, parent_id): a task started with start() moves from
// its caller's scope to the task group's once it calls task_status.started().
PyObject* fn_reparent_task(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3 || !PyObject_TypeCheck(args[1], CancelScopeType))
    return raise(PyExc_TypeError, "reparent_task(task, scope, parent_id)");
  TaskState* t = state_of_task(args[0]);
  if (!t) return nullptr;
  size_t parent_id = PyLong_AsSize_t(args[2]);
  if (parent_id == static_cast<size_t>(-1) && PyErr_Occurred()) return nullptr;
  auto* scope = reinterpret_cast<CancelScope*>(args[1]);
  bool at_root = t->home == t->root;
  if (at_root) task_unlink(t);
  Py_INCREF(scope);
  Py_XSETREF(t->root, scope);
  if (at_root) task_link(t, scope);
  // Scopes the task entered meanwhile hang below the old root; move the
  // outermost one across too.
  CancelScope* outer = t->scope;
  while (outer && outer->parent && outer->parent->host == t) outer = outer->parent;
  if (outer && outer->parent != scope) {
    CancelScope* old = outer->parent;
    if (old) child_unlink(old, outer);
    child_link(scope, outer);
    Py_INCREF(scope);
    outer->parent = scope;
    Py_XDECREF(old);
  }
  t->parent_id = parent_id;
  if (deliver(t) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Marks the current task as parked where cancellation must not reach it (the
// host of a task group waiting for its children, cancel_shielded_checkpoint).
PyObject* fn_set_shielded_yield(PyObject*, PyObject* flag) {
  TaskState* t = current_task_state(true);
  if (!t) return nullptr;
  t->shielded_yield = flag == Py_True;
  Py_RETURN_NONE;
}

// Whether the current task is effectively cancelled, for Python-side checks.
PyObject* fn_current_cancel_origin(PyObject*, PyObject*) {
  TaskState* t = task_state_if_any();
  if (!t) Py_RETURN_NONE;
  CancelScope* s = effective_cancel(t);
  PyObject* r = s ? reinterpret_cast<PyObject*>(s) : Py_None;
  Py_INCREF(r);
  return r;
}

PyObject* fn_make_cancelled_error(PyObject*, PyObject* scope) {
  if (!PyObject_TypeCheck(scope, CancelScopeType)) return raise(PyExc_TypeError, "expected a CancelScope");
  return make_cancelled_error(reinterpret_cast<CancelScope*>(scope));
}

PyObject* fn_is_scope_cancelled_error(PyObject*, PyObject* exc) {
  return PyBool_FromLong(is_scope_cancelled_error(exc));
}

// The innermost scope of the current task (or its root), for TaskInfo and tests.
PyObject* fn_current_scope(PyObject*, PyObject*) {
  TaskState* t = current_task_state(true);
  if (!t) return nullptr;
  CancelScope* s = t->scope ? t->scope : t->root;
  PyObject* r = s ? reinterpret_cast<PyObject*>(s) : Py_None;
  Py_INCREF(r);
  return r;
}

// task_parent_id(coro): id() of the task that spawned a wrapped task, or None.
PyObject* fn_task_parent_id(PyObject*, PyObject* coro) {
  if (Py_TYPE(coro) == TaskCoroType && reinterpret_cast<TaskCoro*>(coro)->st.parent_id)
    return PyLong_FromSize_t(reinterpret_cast<TaskCoro*>(coro)->st.parent_id);
  Py_RETURN_NONE;
}

// The wrapped coroutine of a task this package spawned, else the task's own.
PyObject* fn_unwrap_coro(PyObject*, PyObject* coro) {
  if (Py_TYPE(coro) == TaskCoroType) {
    PyObject* inner = reinterpret_cast<TaskCoro*>(coro)->coro;
    Py_INCREF(inner);
    return inner;
  }
  Py_INCREF(coro);
  return coro;
}

// For TaskInfo.has_pending_cancellation(): is `task` (any asyncio task)
// effectively cancelled by a cancel scope right now?
PyObject* fn_task_cancel_pending(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) return raise(PyExc_TypeError, "task_cancel_pending(task, coro)");
  PyObject* coro = args[1];
  TaskState* t = nullptr;
  if (Py_TYPE(coro) == TaskCoroType) {
    t = &reinterpret_cast<TaskCoro*>(coro)->st;
  } else {
    PyObject* loop = running_loop();
    if (!loop) Py_RETURN_FALSE;
    LoopState* ls = loop_state_for(loop);
    if (!ls) return nullptr;
    PyObject* hs = PyDict_GetItemWithError(ls->hosts, args[0]);
    if (!hs) {
      if (PyErr_Occurred()) return nullptr;
      Py_RETURN_FALSE;
    }
    t = state_of_owner(hs);
  }
  return PyBool_FromLong(effective_cancel(t) != nullptr);
}

// The running asyncio loop or None, without asyncio's getpid() inside tasks
// we spawned.
PyObject* fn_running_loop(PyObject*, PyObject*) {
  PyObject* loop = running_loop();
  if (!loop) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
  }
  Py_INCREF(loop);
  return loop;
}

PyMethodDef module_fns[] = {
    {"running_loop", fn_running_loop, METH_NOARGS, nullptr},
    {"set_shielded_yield", fn_set_shielded_yield, METH_O, nullptr},
    {"wrap_coro", fn_wrap_coro, METH_O, nullptr},
    {"reparent_task", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_reparent_task)),
     METH_FASTCALL, nullptr},
    {"cancel_task", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_cancel_task)),
     METH_FASTCALL, nullptr},
    {"current_cancel_origin", fn_current_cancel_origin, METH_NOARGS, nullptr},
    {"make_cancelled_error", fn_make_cancelled_error, METH_O, nullptr},
    {"is_scope_cancelled_error", fn_is_scope_cancelled_error, METH_O, nullptr},
    {"current_scope", fn_current_scope, METH_NOARGS, nullptr},
    {"unwrap_coro", fn_unwrap_coro, METH_O, nullptr},
    {"task_parent_id", fn_task_parent_id, METH_O, nullptr},
    {"task_cancel_pending",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_task_cancel_pending)), METH_FASTCALL,
     nullptr},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_task_coro(PyObject* module) {
  TaskCoroType = add_type(module, &tc_spec);
  if (!TaskCoroType) return -1;
  return PyModule_AddFunctions(module, module_fns);
}

}  // namespace anyio
