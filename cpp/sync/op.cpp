// Op: the awaitable behind Event.wait() and every pool acquire (Lock,
// Semaphore, CapacityLimiter). One C object per await, no Python frame.
//
// asyncio, following anyio's rules for a blocking operation:
//  1. a task already cancelled gets CancelledError at once;
//  2. if the operation succeeds without waiting, yield once with
//     cancellation shielded (acquire; skipped with fast_acquire) or unshielded
//     (Event.wait on a set event, a plain checkpoint);
//  3. otherwise park on a loop future in the primitive's FIFO; the waker
//     grants the token before setting the future, so a waiter cancelled after
//     being granted hands the token on instead of losing it.
// Trio: the same object forwards to a small coroutine in anyio._sync_trio that
// parks with trio.lowlevel.wait_task_rescheduled; queues and counters stay here.
#include <cstring>

#include "common/awaitable.hpp"
#include "introspect/task_tree.hpp"
#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

enum OpState : unsigned char {
  ST_FRESH = 0,
  ST_HELD_YIELD = 1,  // acquired, yielding once with cancellation shielded
  ST_PARKED = 2,      // waiting on w.fut
  ST_CHECKPOINT = 3,  // yielding once, cancellable
  ST_TRIO = 4,        // forwarding to `inner`
  ST_DONE = 5,
};

struct Op {
  PyObject_HEAD
  Waiter w;
  PyObject* prim;      // the Event or pool (strong)
  PyObject* who;       // explicit borrower, or the acquiring task once started (strong)
  PyObject* shielded;  // owner of the TaskState whose shielded_yield we set
  PyObject* inner;     // Trio: the coroutine we forward to
  unsigned char kind;
  unsigned char state;
};

PyTypeObject* OpType = nullptr;

void release_shield(Op* self) { unshield_yield(&self->shielded); }

// Takes the waiter out and gives back whatever it was granted.
int abandon(Op* self) {
  int rc = 0;
  if (self->w.linked) queue_of(self->prim)->unlink(&self->w);
  if (self->state == ST_PARKED && self->w.granted && self->kind == OP_ACQUIRE) {
    self->w.granted = false;
    rc = pool_release(self->prim, self->who, false);
  } else if (self->state == ST_HELD_YIELD) {
    rc = pool_release(self->prim, self->who, false);
  }
  release_shield(self);
  waiter_clear(&self->w);
  self->state = ST_DONE;
  return rc;
}

PySendResult ret_none(Op* self, PyObject** out) {
  self->state = ST_DONE;
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_RETURN;
}

PySendResult fail(Op* self, PyObject** out) {
  self->state = ST_DONE;
  *out = nullptr;
  return PYGEN_ERROR;
}

PySendResult forward(Op* self, PyObject* arg, PyObject** out) {
  PySendResult r = inner_send(&self->inner, arg, out);
  if (r != PYGEN_NEXT) self->state = ST_DONE;
  return r;
}

PySendResult start_trio(Op* self, PyObject* arg, PyObject** out) {
  PyObject* fn = trio_glue(self->kind == OP_EVENT_WAIT ? TRIO_EVENT_WAIT : TRIO_ACQUIRE);
  if (!fn) return fail(self, out);
  PyObject* flag = self->kind == OP_EVENT_WAIT ? (event_is_set(self->prim) ? Py_True : Py_False)
                                               : (pool_fast(self->prim) ? Py_True : Py_False);
  PyObject* args[] = {reinterpret_cast<PyObject*>(self), flag};
  self->inner = PyObject_Vectorcall(fn, args, 2, nullptr);
  if (!self->inner) return fail(self, out);
  self->state = ST_TRIO;
  return forward(self, arg, out);
}

PySendResult park(Op* self, TaskState* t, PyObject** out) {
  PyObject* loop = (t && t->loop && t->loop->alive) ? t->loop->loop : running_loop();
  if (!loop) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return fail(self, out);
  }
  PyObject* fut = call_method0(loop, G.s_create_future);
  if (!fut) return fail(self, out);
  if (PyObject_SetAttr(fut, G.s_asyncio_future_blocking, Py_True) < 0) {
    Py_DECREF(fut);
    return fail(self, out);
  }
  self->w.fut = fut;
  self->w.trio = false;
  self->w.granted = false;
  if (self->who) {
    Py_INCREF(self->who);
    Py_XSETREF(self->w.who, self->who);
  }
  queue_of(self->prim)->push(&self->w);
  self->state = ST_PARKED;
  Py_INCREF(fut);
  *out = fut;
  return PYGEN_NEXT;
}

PySendResult start(Op* self, PyObject* arg, PyObject** out) {
  TaskState* t = tls_current;
  if (!t) {
    PyObject* loop = running_loop();
    if (!loop) {
      if (PyErr_Occurred()) return fail(self, out);
      Backend b = detect_backend();
      if (b == BACKEND_TRIO) return start_trio(self, arg, out);
      if (b == BACKEND_NONE) no_event_loop();
      return fail(self, out);
    }
    t = current_task_state(false);
    if (!t) PyErr_Clear();  // a task with no scopes cannot be cancelled by one
  }
  if (t) {
    CancelScope* origin = effective_cancel(t);
    if (origin) {
      PyObject* exc = make_cancelled_error(origin);
      if (exc) {
        PyErr_SetObject(G.CancelledError, exc);
        Py_DECREF(exc);
      }
      return fail(self, out);
    }
  }
  if (self->kind == OP_EVENT_WAIT) {
    if (!event_is_set(self->prim)) return park(self, t, out);
    self->state = ST_CHECKPOINT;
    Py_INCREF(Py_None);
    *out = Py_None;
    return PYGEN_NEXT;
  }
  if (!self->who && pool_needs_who(self->prim)) {
    if (t && t->task) {
      Py_INCREF(t->task);
      self->who = t->task;
    } else {
      self->who = current_task_obj();
      if (!self->who) return fail(self, out);
    }
  }
  int rc = pool_try_acquire(self->prim, self->who);
  if (rc < 0) return fail(self, out);
  if (rc == 0) return park(self, t, out);
  if (pool_fast(self->prim)) return ret_none(self, out);
  shield_yield(t, &self->shielded);
  self->state = ST_HELD_YIELD;
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_NEXT;
}

PySendResult op_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  switch (self->state) {
    case ST_FRESH:
      return start(self, arg, out);
    case ST_TRIO:
      return forward(self, arg, out);
    case ST_HELD_YIELD:
      release_shield(self);
      return ret_none(self, out);
    case ST_CHECKPOINT:
      return ret_none(self, out);
    case ST_PARKED:
      if (self->w.granted) {
        waiter_clear(&self->w);
        return ret_none(self, out);
      }
      // Resumed without being granted: only a foreign caller can do that.
      abandon(self);
      PyErr_SetString(PyExc_RuntimeError, "resumed before the wait was granted");
      return fail(self, out);
    default:
      PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
      *out = nullptr;
      return PYGEN_ERROR;
  }
}

PyObject* op_throw(PyObject* self_obj, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) < 0) return nullptr;
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (self->inner) {
    PyObject* out = nullptr;
    PySendResult r = inner_throw(&self->inner, args, nargs, &out);
    if (r != PYGEN_NEXT) self->state = ST_DONE;
    return send_result_to_python(r, out);
  }
  if (abandon(self) < 0) PyErr_WriteUnraisable(self_obj);
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* op_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (self->inner) {
    self->state = ST_DONE;
    return inner_close(&self->inner);
  }
  if (self->state != ST_DONE && abandon(self) < 0) return nullptr;
  self->state = ST_DONE;
  Py_RETURN_NONE;
}

// --- methods the Trio coroutine calls ----------------------------------------

// _start_acquire(task) -> bool: try the non-blocking path for `task` (or the
// explicit borrower).
PyObject* op_start_acquire(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (!self->who) {
    Py_INCREF(task);
    self->who = task;
  }
  int rc = pool_try_acquire(self->prim, self->who);
  if (rc < 0) return nullptr;
  return PyBool_FromLong(rc);
}

// _park(task): queue this waiter for the Trio task `task`.
PyObject* op_park(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  Py_INCREF(task);
  Py_XSETREF(self->w.fut, task);
  if (self->who) {
    Py_INCREF(self->who);
    Py_XSETREF(self->w.who, self->who);
  }
  self->w.trio = true;
  self->w.granted = false;
  queue_of(self->prim)->push(&self->w);
  Py_RETURN_NONE;
}

// _abort(raise_cancel): Trio's abort function for the parked task. Trio calls
// it only while nobody has woken the task, so there is no grant to hand on.
PyObject* op_abort(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (self->w.linked) queue_of(self->prim)->unlink(&self->w);
  waiter_clear(&self->w);
  return abort_succeeded();
}

// _undo(): cancelled during the shielded yield after acquiring: give it back.
PyObject* op_undo(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (pool_release(self->prim, self->who, false) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Names for reprs of the tasks that run this awaitable directly.
PyObject* op_name(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  if (self->kind == OP_EVENT_WAIT) return PyUnicode_FromString("wait");
  return PyUnicode_FromString("acquire");
}

PyObject* op_qualname(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<Op*>(self_obj);
  PyObject* name = op_name(self_obj, nullptr);
  if (!name) return nullptr;
  // The type's name without its module (public API only: _PyType_Name is private).
  const char* type_name = Py_TYPE(self->prim)->tp_name;
  if (const char* dot = std::strrchr(type_name, '.')) type_name = dot + 1;
  PyObject* r = PyUnicode_FromFormat("%s.%U", type_name, name);
  Py_DECREF(name);
  return r;
}

PyGetSetDef op_getset[] = {
    {"__name__", op_name, nullptr, nullptr, nullptr},
    {"__qualname__", op_qualname, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

int op_traverse(Op* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->prim);
  Py_VISIT(self->who);
  Py_VISIT(self->inner);
  Py_VISIT(self->w.fut);
  Py_VISIT(self->w.who);
  return 0;
}

int op_clear(Op* self) {
  Py_CLEAR(self->inner);
  if (self->prim && self->state != ST_DONE) {
    if (abandon(self) < 0) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(self));
  }
  release_shield(self);
  waiter_clear(&self->w);
  Py_CLEAR(self->who);
  Py_CLEAR(self->prim);
  return 0;
}

void op_dealloc(Op* self) {
  PyObject_GC_UnTrack(self);
  op_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyMethodDef op_methods[] = {
    {"send", send_method_via_send<op_send>, METH_O, nullptr},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(op_throw)), METH_FASTCALL, nullptr},
    {"close", op_close, METH_NOARGS, nullptr},
    {"_start_acquire", op_start_acquire, METH_O, nullptr},
    {"_park", op_park, METH_O, nullptr},
    {"_abort", op_abort, METH_O, nullptr},
    {"_undo", op_undo, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot op_slots[] = {
    {Py_am_send, reinterpret_cast<void*>(op_send)},
    {Py_am_await, reinterpret_cast<void*>(await_self)},
    {Py_tp_iter, reinterpret_cast<void*>(await_self)},
    {Py_tp_iternext, reinterpret_cast<void*>(iternext_via_send<op_send>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(op_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(op_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(op_clear)},
    {Py_tp_methods, op_methods},
    {Py_tp_getset, op_getset},
    {0, nullptr},
};

PyType_Spec op_spec = {
    "anyio._cpp.SyncOp",
    sizeof(Op),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    op_slots,
};

}  // namespace

PyObject* make_op(PyObject* prim, OpKind kind, PyObject* who) {
  auto* self = PyObject_GC_New(Op, OpType);
  if (!self) return nullptr;
  new (&self->w) Waiter();
  Py_INCREF(prim);
  self->prim = prim;
  Py_XINCREF(who);
  self->who = who;
  self->shielded = nullptr;
  self->inner = nullptr;
  self->kind = kind;
  self->state = ST_FRESH;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

// introspection (task tree): what a SyncOp waits on, read at snapshot time only.
PyObject* op_waits_on(PyObject* obj) {
  if (!OpType || Py_TYPE(obj) != OpType) Py_RETURN_NONE;
  auto* self = reinterpret_cast<Op*>(obj);
  if (!self->prim) Py_RETURN_NONE;
  const char* kind = self->kind == OP_EVENT_WAIT ? "event" : "acquire";
  // Trio parks through `inner`; the waiter is queued either way.
  PyObject* parked = self->w.linked ? Py_True : Py_False;
  return Py_BuildValue("(sOO)", kind, self->prim, parked);
}

int register_op(PyObject* module) {
  OpType = add_type(module, &op_spec);
  return OpType ? 0 : -1;
}

}  // namespace anyio::sync
