// SyncOp: the awaitable behind Event.wait() and every token pool acquire
// (Lock, Semaphore, CapacityLimiter). One C object per await, no Python frame.
//
// asyncio, following anyio's rules for a blocking operation:
//  1. a task already cancelled gets CancelledError at once;
//  2. if the operation succeeds without waiting, yield once with
//     cancellation shielded (acquire; skipped with fast_acquire) or unshielded
//     (Event.wait on a set event, a plain checkpoint);
//  3. otherwise park on a loop future in the primitive's FIFO; the waker
//     grants the token before setting the future, so a waiter cancelled after
//     being granted hands the token on instead of losing it.
// Trio: the same object forwards to a small coroutine of anyio._sync_trio
// (handed over as the sync_trio_* hooks) that parks with
// trio.lowlevel.wait_task_rescheduled; queues and counters stay here.
#include <cstring>

#include "common/awaitable.hpp"
#include "introspect/task_tree.hpp"
#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

struct SyncOp {
  PyObject_HEAD
  Waiter w;
  PyObject* prim;      // the Event or pool (strong)
  PyObject* who;       // explicit borrower, or the acquiring task once started (strong)
  PyObject* shielded;  // owner of the TaskState whose shielded_yield we set
  PyObject* inner;     // Trio: the coroutine we forward to
  SyncOpKind kind;
  OpPhase phase;
};

PyTypeObject* SyncOpType = nullptr;

// Takes the waiter out and gives back whatever it was granted.
int abandon(SyncOp* self) {
  int rc = 0;
  if (self->w.linked) queue_of(self->prim)->unlink(&self->w);
  if (self->phase == OpPhase::Parked && self->w.granted && self->kind == SyncOpKind::Acquire) {
    self->w.granted = false;
    rc = pool_release(self->prim, self->who, false);
  } else if (self->phase == OpPhase::ShieldedYield) {
    rc = pool_release(self->prim, self->who, false);
  }
  unshield_yield(&self->shielded);
  waiter_clear(&self->w);
  self->phase = OpPhase::Done;
  return rc;
}

PySendResult ret_none(SyncOp* self, PyObject** out) {
  self->phase = OpPhase::Done;
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_RETURN;
}

PySendResult fail(SyncOp* self, PyObject** out) {
  self->phase = OpPhase::Done;
  *out = nullptr;
  return PYGEN_ERROR;
}

PySendResult forward(SyncOp* self, PyObject* arg, PyObject** out) {
  PySendResult r = inner_send(&self->inner, arg, out);
  if (r != PYGEN_NEXT) self->phase = OpPhase::Done;
  return r;
}

PySendResult start_trio(SyncOp* self, PyObject* arg, PyObject** out) {
  PyObject* fn = self->kind == SyncOpKind::EventWait ? ANYIO_REQUIRE_HOOK(sync_trio_event_wait)
                                                     : ANYIO_REQUIRE_HOOK(sync_trio_acquire);
  if (!fn) return fail(self, out);
  PyObject* flag = self->kind == SyncOpKind::EventWait ? (event_is_set(self->prim) ? Py_True : Py_False)
                                                       : (pool_fast(self->prim) ? Py_True : Py_False);
  PyObject* args[] = {reinterpret_cast<PyObject*>(self), flag};
  self->inner = PyObject_Vectorcall(fn, args, 2, nullptr);
  if (!self->inner) return fail(self, out);
  self->phase = OpPhase::TrioWait;
  return forward(self, arg, out);
}

PySendResult park(SyncOp* self, TaskState* t, PyObject** out) {
  PyObject* loop = (t && t->loop && t->loop->alive) ? t->loop->loop : running_loop();
  if (!loop) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return fail(self, out);
  }
  PyObject* fut = new_parking_future(loop);
  if (!fut) return fail(self, out);
  self->w.waker = fut;
  self->w.trio = false;
  self->w.granted = false;
  if (self->who) {
    Py_INCREF(self->who);
    Py_XSETREF(self->w.who, self->who);
  }
  self->w.parked_at = introspect_clock();  // introspection (task tree)
  queue_of(self->prim)->push(&self->w);
  self->phase = OpPhase::Parked;
  Py_INCREF(fut);
  *out = fut;
  return PYGEN_NEXT;
}

PySendResult start(SyncOp* self, PyObject* arg, PyObject** out) {
  TaskState* t = tls_current;
  if (!t) {
    PyObject* loop = running_loop();
    if (!loop) {
      if (PyErr_Occurred()) return fail(self, out);
      Backend b = current_backend();
      if (b == Backend::Trio) return start_trio(self, arg, out);
      if (b == Backend::None) raise_no_event_loop();
      return fail(self, out);
    }
    t = task_state_if_any();
  }
  if (raise_if_cancelled(t) != 0) return fail(self, out);
  if (self->kind == SyncOpKind::EventWait) {
    if (!event_is_set(self->prim)) return park(self, t, out);
    self->phase = OpPhase::Checkpoint;
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
  self->phase = OpPhase::ShieldedYield;
  Py_INCREF(Py_None);
  *out = Py_None;
  return PYGEN_NEXT;
}

PySendResult op_send(PyObject* self_obj, PyObject* arg, PyObject** out) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  switch (self->phase) {
    case OpPhase::Fresh:
      return start(self, arg, out);
    case OpPhase::TrioWait:
      return forward(self, arg, out);
    case OpPhase::ShieldedYield:
      unshield_yield(&self->shielded);
      return ret_none(self, out);
    case OpPhase::Checkpoint:
      return ret_none(self, out);
    case OpPhase::Parked:
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
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  if (self->inner) {
    PyObject* out = nullptr;
    PySendResult r = inner_throw(&self->inner, args, nargs, &out);
    if (r != PYGEN_NEXT) self->phase = OpPhase::Done;
    return send_result_to_python(r, out);
  }
  if (abandon(self) < 0) PyErr_WriteUnraisable(self_obj);
  set_thrown(args, nargs);
  return nullptr;
}

PyObject* op_close(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  if (self->inner) {
    self->phase = OpPhase::Done;
    return inner_close(&self->inner);
  }
  if (self->phase != OpPhase::Done && abandon(self) < 0) return nullptr;
  self->phase = OpPhase::Done;
  Py_RETURN_NONE;
}

// --- methods the Trio coroutine calls ----------------------------------------

// _start_acquire(task) -> bool: try the non-blocking path for `task` (or the
// explicit borrower).
PyObject* op_start_acquire(PyObject* self_obj, PyObject* task) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
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
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  Py_INCREF(task);
  Py_XSETREF(self->w.waker, task);
  if (self->who) {
    Py_INCREF(self->who);
    Py_XSETREF(self->w.who, self->who);
  }
  self->w.trio = true;
  self->w.granted = false;
  self->w.parked_at = introspect_clock();  // introspection (task tree)
  queue_of(self->prim)->push(&self->w);
  Py_RETURN_NONE;
}

// _abort(raise_cancel): Trio's abort function for the parked task. Trio calls
// it only while nobody has woken the task, so there is no grant to hand on.
PyObject* op_abort(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  if (self->w.linked) queue_of(self->prim)->unlink(&self->w);
  waiter_clear(&self->w);
  const TrioLowlevel* tl = trio();
  return tl ? Py_NewRef(tl->abort_succeeded) : nullptr;
}

// _undo(): cancelled during the shielded yield after acquiring: give it back.
PyObject* op_undo(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  if (pool_release(self->prim, self->who, false) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Names for reprs of the tasks that run this awaitable directly.
PyObject* op_name(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  if (self->kind == SyncOpKind::EventWait) return PyUnicode_FromString("wait");
  return PyUnicode_FromString("acquire");
}

PyObject* op_qualname(PyObject* self_obj, void*) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
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

// Dropped last, once the op has left its primitive; the waiter's references
// go with waiter_clear().
using SyncOpRefs = OwnedRefs<&SyncOp::who, &SyncOp::prim>;

int op_traverse(PyObject* self_obj, visitproc visit, void* arg) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  Py_VISIT(self->inner);
  Py_VISIT(self->w.waker);
  Py_VISIT(self->w.who);
  return SyncOpRefs::traverse(self_obj, visit, arg);
}

int op_clear(PyObject* self_obj) {
  auto* self = reinterpret_cast<SyncOp*>(self_obj);
  Py_CLEAR(self->inner);
  if (self->prim && self->phase != OpPhase::Done) {
    if (abandon(self) < 0) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(self));
  }
  // A Trio wait closed from outside is Done but may still be queued.
  if (self->prim && self->w.linked) queue_of(self->prim)->unlink(&self->w);
  unshield_yield(&self->shielded);
  waiter_clear(&self->w);
  return SyncOpRefs::clear(self_obj);
}

PyMethodDef op_methods[] = {
    {"_start_acquire", op_start_acquire, METH_O, nullptr},
    {"_park", op_park, METH_O, nullptr},
    {"_abort", op_abort, METH_O, nullptr},
    {"_undo", op_undo, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

const AwaitableSpec op_spec = {
    .name = "anyio._cpp.SyncOp",
    .send = op_send,
    .throw_ = op_throw,
    .close = op_close,
    .traverse = op_traverse,
    .clear = op_clear,
    .methods = op_methods,
    .getset = op_getset,
};

}  // namespace

PyObject* make_sync_op(PyObject* prim, SyncOpKind kind, PyObject* who) {
  // Each field set once here (cheaper than new_awaitable's zeroing on the
  // path of every acquire and wait).
  auto* self = PyObject_GC_New(SyncOp, SyncOpType);
  if (!self) return nullptr;
  new (&self->w) Waiter();
  Py_INCREF(prim);
  self->prim = prim;
  Py_XINCREF(who);
  self->who = who;
  self->shielded = nullptr;
  self->inner = nullptr;
  self->kind = kind;
  self->phase = OpPhase::Fresh;
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

// introspection (task tree): what a SyncOp waits on, read at snapshot time only.
PyObject* op_waits_on(PyObject* obj) {
  if (!SyncOpType || Py_TYPE(obj) != SyncOpType) Py_RETURN_NONE;
  auto* self = reinterpret_cast<SyncOp*>(obj);
  if (!self->prim) Py_RETURN_NONE;
  const char* kind = self->kind == SyncOpKind::EventWait ? "event" : "acquire";
  // Trio parks through `inner`; the waiter is queued either way.
  if (!self->w.linked) return Py_BuildValue("(sOOO)", kind, self->prim, Py_False, Py_None);
  return Py_BuildValue("(sOOd)", kind, self->prim, Py_True, introspect_clock() - self->w.parked_at);
}

int register_op(PyObject* module) {
  SyncOpType = add_awaitable_type<SyncOp>(module, op_spec);
  return SyncOpType ? 0 : -1;
}

}  // namespace anyio::sync
