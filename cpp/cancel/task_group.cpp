// Task groups on asyncio: spawning children (wrapped so the scope tree sees
// them), the bookkeeping of their completion, and entering and leaving a group
// when there is nothing to wait for. Waiting for children and building
// exception groups is Python (anyio._taskgroup), as is everything on Trio.

#include "cancel/core.hpp"
#include "common/awaitable.hpp"

namespace anyio {

PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id);

namespace {

// The base class of anyio's TaskGroup (the Python subclass in anyio._taskgroup
// adds start(), create_task() and the Trio side). Entering and leaving an
// asyncio group with nothing left to wait for never runs Python code; anything
// else (children still running, errors to collect) continues in the subclass's
// `_asyncio_exit` coroutine.
struct TaskGroupBase {
  PyObject_HEAD
  CancelScope* scope;    // the group's cancel scope (strong), made with the group
  PyObject* tasks;       // set of running child tasks, made at the first spawn
  PyObject* exceptions;  // list of child exceptions in completion order, made on demand
  PyObject* waiter;      // the host's future while it waits in __aexit__, or null
  PyObject* starting;    // dict: task -> future of a start() still waiting, on demand
  PyObject* done_cb;     // bound _on_done, made at the first spawn
  PyObject* nursery;     // Trio: the nursery and its manager (strong), for the subclass
  PyObject* nursery_cm;
  size_t host_id;  // id() of the task that entered the group
  unsigned char active;
  unsigned char entered;
  unsigned char trio;  // entered on Trio: the subclass does everything
};

PyTypeObject* TaskGroupBaseType = nullptr;
PyTypeObject* TgExitType = nullptr;

Py_ssize_t pending(TaskGroupBase* self) { return self->tasks ? PySet_GET_SIZE(self->tasks) : 0; }

bool has_exceptions(TaskGroupBase* self) { return self->exceptions && PyList_GET_SIZE(self->exceptions) > 0; }

PyObject* tg_on_done(PyObject* self_obj, PyObject* task);

int ensure_spawn_state(TaskGroupBase* self) {
  if (!self->tasks && !(self->tasks = PySet_New(nullptr))) return -1;
  if (!self->done_cb) {
    static PyMethodDef on_done_def = {"_on_done", tg_on_done, METH_O, nullptr};
    self->done_cb = PyCFunction_New(&on_done_def, reinterpret_cast<PyObject*>(self));
    if (!self->done_cb) return -1;
  }
  return 0;
}

PyObject* ensure_exceptions(TaskGroupBase* self) {
  if (!self->exceptions) self->exceptions = PyList_New(0);
  return self->exceptions;
}

PyObject* ensure_starting(TaskGroupBase* self) {
  if (!self->starting) self->starting = PyDict_New();
  return self->starting;
}

// The task name for a callable: its ``__module__`` and ``__qualname__``, the
// ones present and non-empty, joined with a dot, as upstream names tasks on
// every backend. A functools.partial has no __qualname__ and its class's
// __module__, so it is named "functools"; an object with neither gets "". A
// non-string part raises the TypeError str.join raises, as upstream. Most
// spawns repeat the function of the spawn before, so the last (module,
// qualname) pair and the name made from them are kept; they are compared by
// identity, so a function whose attributes changed gets a fresh name.
PyObject* g_last_qual = nullptr;
PyObject* g_last_mod = nullptr;
PyObject* g_last_name = nullptr;

PyObject* lookup_name_part(PyObject* func, PyObject* attr) {
  PyObject* v = PyObject_GetAttr(func, attr);
  if (!v) {
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return nullptr;
    PyErr_Clear();
    Py_INCREF(Py_None);
    return Py_None;
  }
  return v;
}

PyObject* join_name_parts(PyObject* mod, PyObject* qual) {
  PyObject* parts = PyList_New(0);
  if (!parts) return nullptr;
  for (PyObject* part : {mod, qual}) {
    int truth = PyObject_IsTrue(part);
    if (truth < 0 || (truth && PyList_Append(parts, part) < 0)) {
      Py_DECREF(parts);
      return nullptr;
    }
  }
  PyObject* dot = PyUnicode_FromString(".");
  PyObject* r = dot ? PyUnicode_Join(dot, parts) : nullptr;
  Py_XDECREF(dot);
  Py_DECREF(parts);
  return r;
}

PyObject* task_name_of(PyObject* func) {
  PyObject* mod = lookup_name_part(func, G.s_module);
  if (!mod) return nullptr;
  PyObject* qual = lookup_name_part(func, G.s_qualname);
  if (!qual) {
    Py_DECREF(mod);
    return nullptr;
  }
  if (qual == g_last_qual && mod == g_last_mod && g_last_name) {
    Py_DECREF(qual);
    Py_DECREF(mod);
    Py_INCREF(g_last_name);
    return g_last_name;
  }
  PyObject* r = join_name_parts(mod, qual);
  // Only str and None parts give the same name again for the same objects.
  if (r && (mod == Py_None || PyUnicode_CheckExact(mod)) && (qual == Py_None || PyUnicode_CheckExact(qual))) {
    Py_XSETREF(g_last_qual, qual);
    Py_XSETREF(g_last_mod, mod);
    Py_INCREF(r);
    Py_XSETREF(g_last_name, r);
    return r;
  }
  Py_DECREF(mod);
  Py_DECREF(qual);
  return r;
}

PyObject* check_coroutine(PyObject* func, PyObject* coro) {
  if (PyCoro_CheckExact(coro)) return coro;
  PyObject* fn = PyObject_GetAttrString(G.glue, "check_coroutine");
  if (!fn) {
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* r = PyObject_CallFunctionObjArgs(fn, func, coro, nullptr);
  Py_DECREF(fn);
  if (!r) {
    Py_DECREF(coro);
    return nullptr;
  }
  Py_DECREF(r);
  return coro;
}

PyObject* do_spawn(TaskGroupBase* self, PyObject* coro, PyObject* name, PyObject* start_future,
                   CancelScope* root = nullptr, size_t parent_id = 0) {
  if (ensure_spawn_state(self) < 0) return nullptr;
  bool starting = start_future && start_future != Py_None;
  if (starting && !ensure_starting(self)) return nullptr;
  PyObject* task = spawn_wrapped(coro, root ? root : self->scope, name, self->done_cb, nullptr,
                                 parent_id ? parent_id : self->host_id);
  if (!task) return nullptr;
  if (PySet_Add(self->tasks, task) < 0 ||
      (starting && PyDict_SetItem(self->starting, task, start_future) < 0)) {
    Py_DECREF(task);
    return nullptr;
  }
  return task;
}

PyObject* not_active() {
  return raise(PyExc_RuntimeError, "This task group is not active; no new tasks can be started.");
}

// --- task handles ------------------------------------------------------------------

// The storage of anyio's TaskHandle (the Python subclass in anyio._taskgroup has
// the properties and methods). start_soon makes one per child, so it is filled
// in here without running any Python.
struct TaskHandleBase {
  PyObject_HEAD
  PyObject* task;  // the asyncio.Task, or None on Trio
  PyObject* coro;
  PyObject* name;
  PyObject* start_value;  // unset until start() got the value from started()
  PyObject* outcome;      // Trio: (value, exception, cancelled) once finished
  PyObject* trio_scope;
  PyObject* trio_done;
  PyObject* weakreflist;
  char cancel_requested;
};

PyTypeObject* TaskHandleBaseType = nullptr;
// The Python TaskHandle class, set once by anyio._taskgroup.
PyTypeObject* g_handle_class = nullptr;

PyObject* make_handle(PyTypeObject* cls, PyObject* task, PyObject* coro, PyObject* name) {
  auto* h = reinterpret_cast<TaskHandleBase*>(cls->tp_alloc(cls, 0));
  if (!h) return nullptr;
  Py_INCREF(task);
  h->task = task;
  Py_INCREF(coro);
  h->coro = coro;
  Py_INCREF(name);
  h->name = name;
  return reinterpret_cast<PyObject*>(h);
}

PyObject* th_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"task", "coro", "name", nullptr};
  PyObject *task, *coro, *name;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:TaskHandle", const_cast<char**>(kwlist), &task, &coro,
                                   &name))
    return nullptr;
  return make_handle(type, task, coro, name);
}

int th_traverse(TaskHandleBase* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->task);
  Py_VISIT(self->coro);
  Py_VISIT(self->name);
  Py_VISIT(self->start_value);
  Py_VISIT(self->outcome);
  Py_VISIT(self->trio_scope);
  Py_VISIT(self->trio_done);
  return 0;
}

int th_clear(TaskHandleBase* self) {
  Py_CLEAR(self->task);
  Py_CLEAR(self->coro);
  Py_CLEAR(self->name);
  Py_CLEAR(self->start_value);
  Py_CLEAR(self->outcome);
  Py_CLEAR(self->trio_scope);
  Py_CLEAR(self->trio_done);
  return 0;
}

void th_dealloc(TaskHandleBase* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  th_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMemberDef th_members[] = {
    {"_task", T_OBJECT, offsetof(TaskHandleBase, task), 0, nullptr},
    {"_coro", T_OBJECT, offsetof(TaskHandleBase, coro), 0, nullptr},
    {"_name", T_OBJECT, offsetof(TaskHandleBase, name), 0, nullptr},
    {"_start_value", T_OBJECT_EX, offsetof(TaskHandleBase, start_value), 0, nullptr},
    {"_outcome", T_OBJECT, offsetof(TaskHandleBase, outcome), 0, nullptr},
    {"_trio_scope", T_OBJECT, offsetof(TaskHandleBase, trio_scope), 0, nullptr},
    {"_trio_done", T_OBJECT, offsetof(TaskHandleBase, trio_done), 0, nullptr},
    {"_cancel_requested", T_BOOL, offsetof(TaskHandleBase, cancel_requested), 0, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TaskHandleBase, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot th_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(th_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(th_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(th_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(th_clear)},
    {Py_tp_members, th_members},
    {0, nullptr},
};

PyType_Spec th_spec = {
    "anyio._cpp.TaskHandleBase",
    sizeof(TaskHandleBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    th_slots,
};

// start_soon(func, *args, name=None) -> TaskHandle: the whole spawn in C, so a
// task group's start_soon costs about what asyncio.TaskGroup.create_task does.
PyObject* tg_start_soon(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs < 1) return raise(PyExc_TypeError, "start_soon() missing required argument 'func'");
  PyObject* name = Py_None;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, i), "name") != 0)
        return raise(PyExc_TypeError, "start_soon() got an unexpected keyword argument");
      name = args[nargs + i];
    }
  }
  if (self->trio) {
    PyObject* rest = PyTuple_New(nargs - 1);
    if (!rest) return nullptr;
    for (Py_ssize_t i = 1; i < nargs; ++i) {
      Py_INCREF(args[i]);
      PyTuple_SET_ITEM(rest, i - 1, args[i]);
    }
    PyObject* margs[] = {self_obj, args[0], rest, name};
    PyObject* r =
        PyObject_VectorcallMethod(G.s_trio_start_soon, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    Py_DECREF(rest);
    return r;
  }
  if (!g_handle_class) return raise(PyExc_RuntimeError, "anyio._taskgroup is not initialised");
  PyObject* func = args[0];
  // Named first, as upstream: a name that cannot be made leaves no coroutine.
  PyObject* name_obj = name == Py_None ? task_name_of(func) : PyObject_Str(name);
  if (!name_obj) return nullptr;
  PyObject* coro = PyObject_Vectorcall(func, args + 1, static_cast<size_t>(nargs - 1), nullptr);
  if (coro) coro = check_coroutine(func, coro);
  if (!coro) {
    Py_DECREF(name_obj);
    return nullptr;
  }
  if (!self->active) {
    PyObject* r = call_method0(coro, G.s_close);
    Py_XDECREF(r);
    Py_DECREF(coro);
    Py_DECREF(name_obj);
    return not_active();
  }
  PyObject* task = do_spawn(self, coro, name_obj, nullptr);
  if (!task) {
    Py_DECREF(name_obj);
    Py_DECREF(coro);
    return nullptr;
  }
  PyObject* handle = make_handle(g_handle_class, task, coro, name_obj);
  Py_DECREF(task);
  Py_DECREF(coro);
  Py_DECREF(name_obj);
  return handle;
}

// _spawn_raw(coro, name, start_future=None, root=None, parent_id=0) -> task. A
// task started with start() is spawned below its caller's scope (`root`) and
// moved to the group once it has started.
PyObject* tg_spawn_raw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs < 2 || nargs > 5)
    return raise(PyExc_TypeError, "_spawn_raw(coro, name, start_future=None, root=None, parent_id=0)");
  if (!self->active) return not_active();
  CancelScope* root = nullptr;
  if (nargs >= 4 && args[3] != Py_None) {
    if (!PyObject_TypeCheck(args[3], CancelScopeType))
      return raise(PyExc_TypeError, "root must be a CancelScope");
    root = reinterpret_cast<CancelScope*>(args[3]);
  }
  size_t parent_id = 0;
  if (nargs == 5) {
    parent_id = PyLong_AsSize_t(args[4]);
    if (parent_id == static_cast<size_t>(-1) && PyErr_Occurred()) return nullptr;
  }
  return do_spawn(self, args[0], args[1], nargs >= 3 ? args[2] : nullptr, root, parent_id);
}

int wake_waiter(TaskGroupBase* self) {
  if (!self->waiter || pending(self) != 0) return 0;
  PyObject* done = call_method0(self->waiter, G.s_done);
  if (!done) return -1;
  bool is_done = done == Py_True;
  Py_DECREF(done);
  if (is_done) return 0;
  PyObject* r = call_method1(self->waiter, G.s_set_result, Py_None);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

PyObject* tg_on_done(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (self->tasks && PySet_Discard(self->tasks, task) < 0) return nullptr;
  PyObject* cancelled = call_method0(task, G.s_cancelled);
  if (!cancelled) return nullptr;
  bool was_cancelled = cancelled == Py_True;
  Py_DECREF(cancelled);
  PyObject* exc = nullptr;
  if (!was_cancelled) {
    exc = call_method0(task, G.s_exception);
    if (!exc) return nullptr;
  }
  // A start() still waiting: the outcome goes to its caller, not the group.
  PyObject* fut = self->starting ? PyDict_GetItemWithError(self->starting, task) : nullptr;
  if (fut) {
    Py_INCREF(fut);
    if (PyDict_DelItem(self->starting, task) < 0) {
      Py_DECREF(fut);
      Py_XDECREF(exc);
      return nullptr;
    }
    PyObject* fn = PyObject_GetAttrString(G.glue, "finish_start_future");
    PyObject* r = fn ? PyObject_CallFunctionObjArgs(fn, fut, task, exc ? exc : Py_None, nullptr) : nullptr;
    Py_XDECREF(fn);
    Py_DECREF(fut);
    Py_XDECREF(exc);
    if (!r) return nullptr;
    bool handled = r == Py_True;
    Py_DECREF(r);
    if (handled) {
      if (wake_waiter(self) < 0) return nullptr;
      Py_RETURN_NONE;
    }
    exc = nullptr;
    if (!was_cancelled) {
      exc = call_method0(task, G.s_exception);
      if (!exc) return nullptr;
    }
  } else if (PyErr_Occurred()) {
    Py_XDECREF(exc);
    return nullptr;
  }
  if (exc && exc != Py_None) {
    if (!PyObject_TypeCheck(exc, reinterpret_cast<PyTypeObject*>(G.CancelledError))) {
      if (!ensure_exceptions(self) || PyList_Append(self->exceptions, exc) < 0) {
        Py_DECREF(exc);
        return nullptr;
      }
      if (scope_do_cancel(self->scope, nullptr, false) < 0) {
        Py_DECREF(exc);
        return nullptr;
      }
    }
  }
  Py_XDECREF(exc);
  if (wake_waiter(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

// --- entering ------------------------------------------------------------------

// What `await tg.__aenter__()` returns on asyncio, where entering never
// suspends: an awaitable that finishes at once with the group.
struct Ready {
  PyObject_HEAD
  PyObject* value;  // strong until handed out
};

PyTypeObject* ReadyType = nullptr;

PySendResult ready_send(PyObject* self_obj, PyObject*, PyObject** out) {
  auto* self = reinterpret_cast<Ready*>(self_obj);
  if (!self->value) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __aenter__()");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  *out = self->value;
  self->value = nullptr;
  return PYGEN_RETURN;
}

PyObject* ready_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  Py_CLEAR(reinterpret_cast<Ready*>(self_obj)->value);
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* ready_close(PyObject* self_obj, PyObject*) {
  Py_CLEAR(reinterpret_cast<Ready*>(self_obj)->value);
  Py_RETURN_NONE;
}

void ready_dealloc(Ready* self) {
  Py_CLEAR(self->value);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef ready_methods[] = {
    {"send", send_method_via_send<ready_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ready_throw)), METH_FASTCALL,
     nullptr},
    {"close", ready_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// Not GC-tracked: it only refers to the group, which never refers back to it.
PyType_Slot ready_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(ready_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<ready_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(ready_dealloc)},
    {Py_tp_methods, ready_methods},
    {0, nullptr},
};

PyType_Spec ready_spec = {"anyio._cpp.TaskGroupEnter", sizeof(Ready), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, ready_slots};

PyObject* tg_aenter(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (self->entered) return raise(PyExc_RuntimeError, "TaskGroup cannot be entered more than once");
  if (!running_loop()) {
    if (PyErr_Occurred()) return nullptr;
    self->entered = 1;
    self->trio = 1;
    return PyObject_CallMethodNoArgs(self_obj, G.s_trio_aenter);
  }
  TaskState* host = current_task_state(true);
  if (!host) return nullptr;
  PyObject* entered = scope_enter(self->scope);
  if (!entered) return nullptr;
  Py_DECREF(entered);
  self->entered = 1;
  self->active = 1;
  self->host_id = reinterpret_cast<size_t>(host->task);
  auto* ready = PyObject_New(Ready, ReadyType);
  if (!ready) return nullptr;
  Py_INCREF(self_obj);
  ready->value = self_obj;
  return reinterpret_cast<PyObject*>(ready);
}

// --- leaving ---------------------------------------------------------------------

// What `await tg.__aexit__(None, None, None)` returns on asyncio when no child
// is left: leaving is still a scheduling point, so it yields once, shielded
// from cancellation, and exits the group's scope. If children were spawned
// during that yield, or the host was cancelled natively while yielding, the
// rest of the work moves to the Python `_asyncio_exit`, which this forwards to.
struct TgExit {
  PyObject_HEAD
  PyObject* group;      // strong
  PyObject* shielded;   // owner of the TaskState whose shielded_yield we set
  PyObject* inner;      // the `_asyncio_exit` coroutine once the work moved there
  unsigned char state;  // 0 fresh, 1 yielded, 2 done
};

void tgx_release_shield(TgExit* self) { unshield_yield(&self->shielded); }

// Hands the rest of the exit to `group._asyncio_exit(None, thrown, True)`.
// Its own part is over: once the continuation finishes, the awaitable is done.
PySendResult tgx_delegate(TgExit* self, PyObject* thrown, PyObject** out) {
  self->state = 2;
  PyObject* margs[] = {self->group, Py_None, thrown ? thrown : Py_None, Py_True};
  self->inner =
      PyObject_VectorcallMethod(G.s_asyncio_exit, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  if (!self->inner) {
    *out = nullptr;
    return PYGEN_ERROR;
  }
  return inner_send(&self->inner, Py_None, out);
}

PySendResult tgx_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<TgExit*>(self_obj);
  if (self->inner) return inner_send(&self->inner, arg, out);
  if (self->state == 0) {
    TaskState* t = current_task_state(true);
    if (!t) {
      *out = nullptr;
      return PYGEN_ERROR;
    }
    shield_yield(t, &self->shielded);
    self->state = 1;
    Py_INCREF(Py_None);
    *out = Py_None;
    return PYGEN_NEXT;
  }
  if (self->state == 2) {
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited __aexit__()");
    *out = nullptr;
    return PYGEN_ERROR;
  }
  tgx_release_shield(self);
  auto* group = reinterpret_cast<TaskGroupBase*>(self->group);
  if (pending(group) || has_exceptions(group)) return tgx_delegate(self, nullptr, out);
  self->state = 2;
  group->active = 0;
  *out = scope_exit(group->scope, Py_None, Py_None, Py_None);
  return *out ? PYGEN_RETURN : PYGEN_ERROR;
}

PyObject* tgx_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<TgExit*>(self_obj);
  PyObject* out = nullptr;
  if (self->inner) return send_result_to_python(inner_throw(&self->inner, args, nargs, &out), out);
  tgx_release_shield(self);
  set_thrown(args, nargs);
  if (self->state != 1) {
    self->state = 2;
    return nullptr;
  }
  // A native cancellation (task.cancel()) of the host during the yield.
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  PySendResult r = tgx_delegate(self, value, &out);
  Py_XDECREF(value);
  return send_result_to_python(r, out);
}

PyObject* tgx_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<TgExit*>(self_obj);
  tgx_release_shield(self);
  self->state = 2;
  if (self->inner) return inner_close(&self->inner);
  Py_RETURN_NONE;
}

int tgx_traverse(TgExit* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->group);
  Py_VISIT(self->shielded);
  Py_VISIT(self->inner);
  return 0;
}

int tgx_clear(TgExit* self) {
  tgx_release_shield(self);
  Py_CLEAR(self->group);
  Py_CLEAR(self->inner);
  return 0;
}

void tgx_dealloc(TgExit* self) {
  PyObject_GC_UnTrack(self);
  tgx_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef tgx_methods[] = {
    {"send", send_method_via_send<tgx_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tgx_throw)), METH_FASTCALL, nullptr},
    {"close", tgx_close, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot tgx_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(tgx_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<tgx_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(tgx_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(tgx_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(tgx_clear)},
    {Py_tp_methods, tgx_methods},
    {0, nullptr},
};

PyType_Spec tgx_spec = {
    "anyio._cpp.TaskGroupExit",
    sizeof(TgExit),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    tgx_slots,
};

PyObject* tg_aexit(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (nargs != 3) return raise(PyExc_TypeError, "__aexit__ expects 3 arguments");
  if (self->trio) {
    PyObject* margs[] = {self_obj, args[0], args[1], args[2]};
    return PyObject_VectorcallMethod(G.s_trio_exit, margs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  }
  if (!self->active) return raise(PyExc_RuntimeError, "This task group is not active");
  if (args[1] != Py_None || pending(self) || has_exceptions(self)) {
    PyObject* margs[] = {self_obj, args[1]};
    return PyObject_VectorcallMethod(G.s_asyncio_exit, margs, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  }
  auto* x = PyObject_GC_New(TgExit, TgExitType);
  if (!x) return nullptr;
  Py_INCREF(self_obj);
  x->group = self_obj;
  x->shielded = nullptr;
  x->inner = nullptr;
  x->state = 0;
  PyObject_GC_Track(x);
  return reinterpret_cast<PyObject*>(x);
}

// --- the type --------------------------------------------------------------------

PyObject* tg_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) || (kwargs && PyDict_GET_SIZE(kwargs)))
    return raise(PyExc_TypeError, "TaskGroup() takes no arguments");
  auto* self = reinterpret_cast<TaskGroupBase*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->scope = reinterpret_cast<CancelScope*>(new_detached_scope());
  if (!self->scope) {
    Py_DECREF(self);
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(self);
}

int tg_traverse(TaskGroupBase* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(reinterpret_cast<PyObject*>(self->scope));
  Py_VISIT(self->tasks);
  Py_VISIT(self->exceptions);
  Py_VISIT(self->waiter);
  Py_VISIT(self->starting);
  Py_VISIT(self->done_cb);
  Py_VISIT(self->nursery);
  Py_VISIT(self->nursery_cm);
  return 0;
}

int tg_clear(TaskGroupBase* self) {
  Py_CLEAR(self->nursery);
  Py_CLEAR(self->nursery_cm);
  Py_CLEAR(self->scope);
  Py_CLEAR(self->tasks);
  Py_CLEAR(self->exceptions);
  Py_CLEAR(self->waiter);
  Py_CLEAR(self->starting);
  Py_CLEAR(self->done_cb);
  return 0;
}

void tg_dealloc(TaskGroupBase* self) {
  PyObject_GC_UnTrack(self);
  tg_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* tg_get_pending(PyObject* self_obj, void*) {
  return PyLong_FromSsize_t(pending(reinterpret_cast<TaskGroupBase*>(self_obj)));
}

PyObject* tg_get_host_id(PyObject* self_obj, void*) {
  return PyLong_FromSize_t(reinterpret_cast<TaskGroupBase*>(self_obj)->host_id);
}

PyObject* tg_get_exceptions(PyObject* self_obj, void*) {
  PyObject* r = ensure_exceptions(reinterpret_cast<TaskGroupBase*>(self_obj));
  Py_XINCREF(r);
  return r;
}

PyObject* tg_get_active(PyObject* self_obj, void*) {
  return PyBool_FromLong(reinterpret_cast<TaskGroupBase*>(self_obj)->active);
}

int tg_set_active(PyObject* self_obj, PyObject* value, void*) {
  int v = value ? PyObject_IsTrue(value) : 0;
  if (v < 0) return -1;
  reinterpret_cast<TaskGroupBase*>(self_obj)->active = static_cast<unsigned char>(v);
  return 0;
}

PyObject* tg_get_waiter(PyObject* self_obj, void*) {
  PyObject* w = reinterpret_cast<TaskGroupBase*>(self_obj)->waiter;
  if (!w) w = Py_None;
  Py_INCREF(w);
  return w;
}

int tg_set_waiter(PyObject* self_obj, PyObject* value, void*) {
  auto* self = reinterpret_cast<TaskGroupBase*>(self_obj);
  if (value == Py_None) value = nullptr;
  Py_XINCREF(value);
  Py_XSETREF(self->waiter, value);
  return 0;
}

PyMethodDef tg_methods[] = {
    {"start_soon", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_start_soon)),
     METH_FASTCALL | METH_KEYWORDS,
     "start_soon(func, *args, name=None)\n--\n\nStart ``func(*args)`` as a new task in this group."},
    {"__aenter__", tg_aenter, METH_NOARGS, nullptr},
    {"__aexit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_aexit)), METH_FASTCALL,
     nullptr},
    {"_spawn_raw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(tg_spawn_raw)), METH_FASTCALL,
     nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef tg_members[] = {
    {"cancel_scope", T_OBJECT, offsetof(TaskGroupBase, scope), READONLY,
     "The cancel scope covering the host and every child task."},
    {"_nursery", T_OBJECT, offsetof(TaskGroupBase, nursery), 0, nullptr},
    {"_nursery_cm", T_OBJECT, offsetof(TaskGroupBase, nursery_cm), 0, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef tg_getset[] = {
    {"_pending", tg_get_pending, nullptr, nullptr, nullptr},
    {"_host_id", tg_get_host_id, nullptr, nullptr, nullptr},
    {"_exceptions", tg_get_exceptions, nullptr, nullptr, nullptr},
    {"_active", tg_get_active, tg_set_active, nullptr, nullptr},
    {"_waiter", tg_get_waiter, tg_set_waiter, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot tg_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(tg_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(tg_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(tg_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(tg_clear)},
    {Py_tp_methods, tg_methods},
    {Py_tp_members, tg_members},
    {Py_tp_getset, tg_getset},
    {0, nullptr},
};

PyType_Spec tg_spec = {
    "anyio._cpp.TaskGroupBase",
    sizeof(TaskGroupBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    tg_slots,
};

}  // namespace

PyObject* fn_set_task_handle_class(PyObject*, PyObject* cls) {
  if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), TaskHandleBaseType))
    return raise(PyExc_TypeError, "expected a subclass of TaskHandleBase");
  Py_INCREF(cls);
  Py_XSETREF(g_handle_class, reinterpret_cast<PyTypeObject*>(cls));
  Py_RETURN_NONE;
}

PyObject* fn_task_name(PyObject*, PyObject* func) { return task_name_of(func); }

PyMethodDef tg_module_fns[] = {
    {"task_name", fn_task_name, METH_O,
     "task_name(func)\n--\n\nThe name a task running ``func`` gets when no name is given."},
    {"set_task_handle_class", fn_set_task_handle_class, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

int register_task_group(PyObject* module) {
  TaskGroupBaseType = add_type(module, &tg_spec);
  ReadyType = add_type(module, &ready_spec);
  TgExitType = add_type(module, &tgx_spec);
  TaskHandleBaseType = add_type(module, &th_spec);
  if (!TaskGroupBaseType || !ReadyType || !TgExitType || !TaskHandleBaseType) return -1;
  return PyModule_AddFunctions(module, tg_module_fns);
}

}  // namespace anyio
