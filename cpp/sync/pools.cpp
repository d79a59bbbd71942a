// Lock, Semaphore and CapacityLimiter share one implementation: a pool of
// tokens with a FIFO of waiters. They differ in who may hold a token:
//  - Lock: one token, held by a task (the owner); only the owner releases;
//  - Semaphore: `value` anonymous tokens, optionally capped by max_value;
//  - CapacityLimiter: `total_tokens` tokens, each held by a distinct borrower
//    (a task or any hashable object).
// A release hands the token straight to the first waiter that can still be
// woken (no barging), so a nowait acquire never steals a token someone was
// promised.
#include <climits>
#include <cmath>

#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

// Which primitive a token pool is, which decides who may hold a token.
enum class Mode : unsigned char { Lock, Semaphore, Limiter };

struct TokenPool {
  PyObject_HEAD
  WaitQueue<Waiter> q;
  Mode mode;
  unsigned char fast_acquire;
  unsigned char big;     // Semaphore: the counts live in big_value/big_max
  Py_ssize_t value;      // Semaphore: tokens available
  Py_ssize_t max_value;  // Semaphore: cap, -1 for none
  // Semaphore counts beyond Py_ssize_t (Python ints, as upstream allows):
  // once a count does not fit, both live here and the slow path does the
  // arithmetic with Python ints. big_max is null for no cap.
  PyObject* big_value;
  PyObject* big_max;
  Py_ssize_t total;     // Limiter: total tokens (PY_SSIZE_T_MAX for inf)
  PyObject* total_obj;  // Limiter: total_tokens as given (int or inf)
  PyObject* owner;      // Lock: owning task (strong) or null
  PyObject* borrowers;  // Limiter: dict borrower -> None (insertion ordered)
  PyObject* weakreflist;
};

PyTypeObject* LockType = nullptr;
PyTypeObject* SemaphoreType = nullptr;
PyTypeObject* LimiterType = nullptr;

inline TokenPool* P(PyObject* o) { return reinterpret_cast<TokenPool*>(o); }

TokenPool* alloc_pool(PyTypeObject* type, Mode mode) {
  auto* self = reinterpret_cast<TokenPool*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  new (&self->q) WaitQueue<Waiter>();
  self->mode = mode;
  self->max_value = -1;
  return self;
}

// --- token hand-off ------------------------------------------------------------

int grant_lock(TokenPool* self) {
  Waiter* w = pop_live(self->q);
  if (!w) {
    if (PyErr_Occurred()) return -1;
    Py_CLEAR(self->owner);
    return 0;
  }
  Py_INCREF(w->who);
  Py_XSETREF(self->owner, w->who);
  return wake(w);
}

int fill_limiter(TokenPool* self) {
  while (PyDict_GET_SIZE(self->borrowers) < self->total) {
    Waiter* w = pop_live(self->q);
    if (!w) return PyErr_Occurred() ? -1 : 0;
    if (PyDict_SetItem(self->borrowers, w->who, Py_None) < 0) return -1;
    if (wake(w) < 0) return -1;
  }
  return 0;
}

PyObject* lock_not_owner_error() {
  // The two backends of upstream anyio word this differently; keep each.
  Backend b = current_backend();
  if (b == Backend::Error) return nullptr;
  return raise(PyExc_RuntimeError, b == Backend::Trio ? "can't release a Lock you don't own"
                                                      : "The current task is not holding this lock");
}

// --- validation -------------------------------------------------------------------

// Parses total_tokens into *total (inf as PY_SSIZE_T_MAX). Returns -1 with
// the upstream error.
int parse_total(PyObject* value, Py_ssize_t* total) {
  if (PyLong_Check(value)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow < 0 || (overflow == 0 && v < 0)) {
      PyErr_SetString(PyExc_ValueError, "total_tokens must be >= 0");
      return -1;
    }
    *total = (overflow > 0 || v > PY_SSIZE_T_MAX) ? PY_SSIZE_T_MAX : static_cast<Py_ssize_t>(v);
    return 0;
  }
  if (PyFloat_Check(value) && std::isinf(PyFloat_AS_DOUBLE(value))) {
    if (PyFloat_AS_DOUBLE(value) < 0) {
      PyErr_SetString(PyExc_ValueError, "total_tokens must be >= 0");
      return -1;
    }
    *total = PY_SSIZE_T_MAX;
    return 0;
  }
  PyErr_SetString(PyExc_TypeError, "total_tokens must be an int or math.inf");
  return -1;
}

// --- constructors -------------------------------------------------------------------

PyObject* lock_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"fast_acquire", nullptr};
  int fast = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p:Lock", const_cast<char**>(kwlist), &fast))
    return nullptr;
  TokenPool* self = alloc_pool(type, Mode::Lock);
  if (self) self->fast_acquire = static_cast<unsigned char>(fast);
  return reinterpret_cast<PyObject*>(self);
}

PyObject* sem_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"initial_value", "max_value", "fast_acquire", nullptr};
  PyObject* initial = nullptr;
  PyObject* max_obj = Py_None;
  int fast = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$Op:Semaphore", const_cast<char**>(kwlist), &initial,
                                   &max_obj, &fast)) {
    return nullptr;
  }
  if (!PyLong_Check(initial)) return raise(PyExc_TypeError, "initial_value must be an integer");
  if (max_obj != Py_None && !PyLong_Check(max_obj))
    return raise(PyExc_TypeError, "max_value must be an integer or None");
  int overflow = 0;
  long long value = PyLong_AsLongLongAndOverflow(initial, &overflow);
  if (value == -1 && PyErr_Occurred()) return nullptr;
  if (overflow < 0 || (overflow == 0 && value < 0))
    return raise(PyExc_ValueError, "initial_value must be >= 0");
  bool big = overflow > 0 || value > PY_SSIZE_T_MAX;
  long long max_value = -1;
  if (max_obj != Py_None) {
    int max_overflow = 0;
    max_value = PyLong_AsLongLongAndOverflow(max_obj, &max_overflow);
    if (max_value == -1 && PyErr_Occurred()) return nullptr;
    big = big || max_overflow > 0 || max_value > PY_SSIZE_T_MAX;
    int lower = big ? PyObject_RichCompareBool(max_obj, initial, Py_LT) : max_value < value;
    if (lower < 0) return nullptr;
    if (lower) return raise(PyExc_ValueError, "max_value must be equal to or higher than initial_value");
  }
  TokenPool* self = alloc_pool(type, Mode::Semaphore);
  if (!self) return nullptr;
  self->fast_acquire = static_cast<unsigned char>(fast);
  if (big) {
    self->big = 1;
    // int(): a bool or an int subclass is stored as the plain int it counts.
    self->big_value = PyNumber_Index(initial);
    self->big_max = max_obj == Py_None ? nullptr : PyNumber_Index(max_obj);
    if (!self->big_value || (max_obj != Py_None && !self->big_max)) {
      Py_DECREF(self);
      return nullptr;
    }
  } else {
    self->value = static_cast<Py_ssize_t>(value);
    self->max_value = static_cast<Py_ssize_t>(max_value);
  }
  return reinterpret_cast<PyObject*>(self);
}

PyObject* lim_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"total_tokens", nullptr};
  PyObject* total_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:CapacityLimiter", const_cast<char**>(kwlist),
                                   &total_obj)) {
    return nullptr;
  }
  Py_ssize_t total = 0;
  if (parse_total(total_obj, &total) < 0) return nullptr;
  PyObject* borrowers = PyDict_New();
  if (!borrowers) return nullptr;
  TokenPool* self = alloc_pool(type, Mode::Limiter);
  if (!self) {
    Py_DECREF(borrowers);
    return nullptr;
  }
  self->borrowers = borrowers;
  self->total = total;
  Py_INCREF(total_obj);
  self->total_obj = total_obj;
  return reinterpret_cast<PyObject*>(self);
}

// Construction happens in tp_new; this accepts the same arguments so that a
// subclass may call super().__init__(...) as it could with upstream's classes.
int pool_init(PyObject*, PyObject*, PyObject*) { return 0; }

// Lock's __init__ also takes fast_acquire, as upstream's does.
int lock_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"fast_acquire", nullptr};
  int fast = P(self)->fast_acquire;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p:Lock", const_cast<char**>(kwlist), &fast)) return -1;
  P(self)->fast_acquire = static_cast<unsigned char>(fast);
  return 0;
}

// --- shared methods ---------------------------------------------------------------

PyObject* pool_acquire(PyObject* self, PyObject*) { return make_sync_op(self, SyncOpKind::Acquire, nullptr); }

// Gives back what the current task holds (a Semaphore's token is anonymous).
int release_current(PyObject* self) {
  PyObject* who = nullptr;
  if (P(self)->mode != Mode::Semaphore) {
    who = current_task_obj();
    if (!who) return -1;
  }
  int rc = pool_release(self, who, true);
  Py_XDECREF(who);
  return rc;
}

PyObject* pool_aexit(PyObject* self, PyObject* const*, Py_ssize_t) {
  if (release_current(self) < 0) return nullptr;
  return done_awaitable();
}

PyObject* pool_release_method(PyObject* self, PyObject*) {
  if (release_current(self) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* nowait_for(PyObject* self, PyObject* who) {
  int rc = pool_try_acquire(self, who);
  if (rc < 0) return nullptr;
  if (rc == 0) {
    const AnyioExceptions* exc = anyio_exceptions();
    if (exc) PyErr_SetNone(exc->WouldBlock);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* pool_acquire_nowait(PyObject* self, PyObject*) {
  if (P(self)->mode == Mode::Semaphore) return nowait_for(self, nullptr);
  PyObject* who = current_task_obj();
  if (!who) return nullptr;
  PyObject* r = nowait_for(self, who);
  Py_DECREF(who);
  return r;
}

PyObject* pool_tasks_waiting(PyObject* self, void*) { return PyLong_FromSsize_t(P(self)->q.size()); }
PyObject* pool_fast_acquire(PyObject* self, void*) { return PyBool_FromLong(P(self)->fast_acquire); }

// Lock

PyObject* lock_locked(PyObject* self, PyObject*) { return PyBool_FromLong(P(self)->owner != nullptr); }
PyObject* lock_owner(PyObject* self, void*) {
  PyObject* o = P(self)->owner ? P(self)->owner : Py_None;
  Py_INCREF(o);
  return o;
}

// Semaphore

PyObject* sem_value(PyObject* self, void*) {
  if (P(self)->big) return Py_NewRef(P(self)->big_value);
  return PyLong_FromSsize_t(P(self)->value);
}
PyObject* sem_max_value(PyObject* self, void*) {
  if (P(self)->big) return Py_NewRef(P(self)->big_max ? P(self)->big_max : Py_None);
  if (P(self)->max_value < 0) Py_RETURN_NONE;
  return PyLong_FromSsize_t(P(self)->max_value);
}

// CapacityLimiter

PyObject* lim_acquire_on_behalf_of(PyObject* self, PyObject* borrower) {
  return make_sync_op(self, SyncOpKind::Acquire, borrower);
}

PyObject* lim_acquire_on_behalf_of_nowait(PyObject* self, PyObject* borrower) {
  return nowait_for(self, borrower);
}

PyObject* lim_release_on_behalf_of(PyObject* self, PyObject* borrower) {
  if (pool_release(self, borrower, true) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* lim_get_total(PyObject* self, void*) {
  Py_INCREF(P(self)->total_obj);
  return P(self)->total_obj;
}

int lim_set_total(PyObject* self_obj, PyObject* value, void*) {
  if (!value) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete total_tokens");
    return -1;
  }
  TokenPool* self = P(self_obj);
  Py_ssize_t total = 0;
  if (parse_total(value, &total) < 0) return -1;
  Py_INCREF(value);
  Py_XSETREF(self->total_obj, value);
  self->total = total;
  // More room: wake as many waiters as now fit.
  return fill_limiter(self);
}

PyObject* lim_borrowed(PyObject* self, void*) {
  return PyLong_FromSsize_t(PyDict_GET_SIZE(P(self)->borrowers));
}

PyObject* lim_available(PyObject* self, void*) {
  PyObject* n = PyLong_FromSsize_t(PyDict_GET_SIZE(P(self)->borrowers));
  if (!n) return nullptr;
  PyObject* r = PyNumber_Subtract(P(self)->total_obj, n);
  Py_DECREF(n);
  return r;
}

PyObject* lim_borrowers(PyObject* self, void*) {
  PyObject* keys = PyDict_Keys(P(self)->borrowers);
  if (!keys) return nullptr;
  PyObject* t = PyList_AsTuple(keys);
  Py_DECREF(keys);
  return t;
}

// --- type plumbing --------------------------------------------------------------------

int pool_traverse(TokenPool* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->owner);
  Py_VISIT(self->borrowers);
  Py_VISIT(self->total_obj);
  return 0;
}

int pool_clear(TokenPool* self) {
  Py_CLEAR(self->owner);
  Py_CLEAR(self->borrowers);
  Py_CLEAR(self->total_obj);
  Py_CLEAR(self->big_value);
  Py_CLEAR(self->big_max);
  return 0;
}

void pool_dealloc(TokenPool* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  pool_clear(self);
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define FASTCALL(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

PyMethodDef lock_methods[] = {
    {"acquire", pool_acquire, METH_NOARGS,
     "acquire()\n--\n\nAcquire the lock, waiting if another task holds it."},
    {"acquire_nowait", pool_acquire_nowait, METH_NOARGS,
     "acquire_nowait()\n--\n\nAcquire the lock without waiting; raise WouldBlock if it is held."},
    {"release", pool_release_method, METH_NOARGS, "release()\n--\n\nRelease the lock."},
    {"locked", lock_locked, METH_NOARGS, "locked()\n--\n\nWhether some task holds the lock."},
    {"__aenter__", pool_acquire, METH_NOARGS, nullptr},
    {"__aexit__", FASTCALL(pool_aexit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef lock_getset[] = {
    {"_owner", lock_owner, nullptr, nullptr, nullptr},
    {"_tasks_waiting", pool_tasks_waiting, nullptr, nullptr, nullptr},
    {"_fast_acquire", pool_fast_acquire, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef sem_methods[] = {
    {"acquire", pool_acquire, METH_NOARGS, "acquire()\n--\n\nTake a token, waiting until one is free."},
    {"acquire_nowait", pool_acquire_nowait, METH_NOARGS,
     "acquire_nowait()\n--\n\nTake a token without waiting; raise WouldBlock if none is free."},
    {"release", pool_release_method, METH_NOARGS, "release()\n--\n\nGive a token back."},
    {"__aenter__", pool_acquire, METH_NOARGS, nullptr},
    {"__aexit__", FASTCALL(pool_aexit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef sem_getset[] = {
    {"value", sem_value, nullptr, "The number of tokens available.", nullptr},
    {"max_value", sem_max_value, nullptr, "The cap on the number of tokens, or None.", nullptr},
    {"_tasks_waiting", pool_tasks_waiting, nullptr, nullptr, nullptr},
    {"_fast_acquire", pool_fast_acquire, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef lim_methods[] = {
    {"acquire", pool_acquire, METH_NOARGS,
     "acquire()\n--\n\nBorrow a token for the current task, waiting until one is free."},
    {"acquire_nowait", pool_acquire_nowait, METH_NOARGS,
     "acquire_nowait()\n--\n\nBorrow a token for the current task without waiting."},
    {"acquire_on_behalf_of", lim_acquire_on_behalf_of, METH_O,
     "acquire_on_behalf_of(borrower)\n--\n\nBorrow a token for `borrower`, waiting until one is free."},
    {"acquire_on_behalf_of_nowait", lim_acquire_on_behalf_of_nowait, METH_O,
     "acquire_on_behalf_of_nowait(borrower)\n--\n\nBorrow a token for `borrower` without waiting."},
    {"release", pool_release_method, METH_NOARGS, "release()\n--\n\nGive back the current task's token."},
    {"release_on_behalf_of", lim_release_on_behalf_of, METH_O,
     "release_on_behalf_of(borrower)\n--\n\nGive back the token `borrower` holds."},
    {"__aenter__", pool_acquire, METH_NOARGS, nullptr},
    {"__aexit__", FASTCALL(pool_aexit), METH_FASTCALL, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef lim_getset[] = {
    {"total_tokens", lim_get_total, lim_set_total,
     "The number of tokens (an int or math.inf); raising it wakes waiting tasks.", nullptr},
    {"borrowed_tokens", lim_borrowed, nullptr, "The number of tokens currently borrowed.", nullptr},
    {"available_tokens", lim_available, nullptr, "total_tokens minus borrowed_tokens.", nullptr},
    {"_borrowers", lim_borrowers, nullptr, nullptr, nullptr},
    {"_tasks_waiting", pool_tasks_waiting, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef pool_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TokenPool, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

#define POOL_SLOTS(prefix, newfn, initfn)                       \
  PyType_Slot prefix##_slots[] = {                              \
      {Py_tp_new, reinterpret_cast<void*>(newfn)},              \
      {Py_tp_init, reinterpret_cast<void*>(initfn)},            \
      {Py_tp_dealloc, reinterpret_cast<void*>(pool_dealloc)},   \
      {Py_tp_traverse, reinterpret_cast<void*>(pool_traverse)}, \
      {Py_tp_clear, reinterpret_cast<void*>(pool_clear)},       \
      {Py_tp_methods, prefix##_methods},                        \
      {Py_tp_getset, prefix##_getset},                          \
      {Py_tp_members, pool_members},                            \
      {0, nullptr},                                             \
  };

POOL_SLOTS(lock, lock_new, lock_init)
POOL_SLOTS(sem, sem_new, pool_init)
POOL_SLOTS(lim, lim_new, pool_init)

constexpr unsigned kFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
PyType_Spec lock_spec = {"anyio._cpp.LockBase", sizeof(TokenPool), 0, kFlags, lock_slots};
PyType_Spec sem_spec = {"anyio._cpp.SemaphoreBase", sizeof(TokenPool), 0, kFlags, sem_slots};
PyType_Spec lim_spec = {"anyio._cpp.CapacityLimiterBase", sizeof(TokenPool), 0, kFlags, lim_slots};

}  // namespace

bool is_pool(PyObject* o) {
  return PyObject_TypeCheck(o, LockType) || PyObject_TypeCheck(o, SemaphoreType) ||
         PyObject_TypeCheck(o, LimiterType);
}

bool pool_fast(PyObject* pool) { return P(pool)->fast_acquire; }
bool pool_needs_who(PyObject* pool) { return P(pool)->mode != Mode::Semaphore; }

WaitQueue<Waiter>* queue_of(PyObject* prim) {
  if (is_event(prim)) return event_queue(prim);
  return &P(prim)->q;
}

namespace {

// The Semaphore's slow path, on Python ints.

// Moves the counts into Python ints (a release past PY_SSIZE_T_MAX).
int go_big(TokenPool* self) {
  PyObject* v = PyLong_FromSsize_t(self->value);
  PyObject* m = self->max_value < 0 ? nullptr : PyLong_FromSsize_t(self->max_value);
  if (!v || (self->max_value >= 0 && !m)) {
    Py_XDECREF(v);
    Py_XDECREF(m);
    return -1;
  }
  self->big_value = v;
  self->big_max = m;
  self->big = 1;
  return 0;
}

int big_add(TokenPool* self, long delta) {
  PyObject* d = PyLong_FromLong(delta);
  if (!d) return -1;
  PyObject* v = PyNumber_Add(self->big_value, d);
  Py_DECREF(d);
  if (!v) return -1;
  Py_SETREF(self->big_value, v);
  return 0;
}

// 1 taken, 0 none free, -1 error.
int big_take(TokenPool* self) {
  PyObject* zero = PyLong_FromLong(0);
  if (!zero) return -1;
  int positive = PyObject_RichCompareBool(self->big_value, zero, Py_GT);
  Py_DECREF(zero);
  if (positive <= 0) return positive;
  return big_add(self, -1) < 0 ? -1 : 1;
}

// 1 when the semaphore holds max_value tokens, -1 on error.
int big_full(TokenPool* self) {
  if (!self->big_max) return 0;
  return PyObject_RichCompareBool(self->big_value, self->big_max, Py_GE);
}

}  // namespace

int pool_try_acquire(PyObject* pool, PyObject* who) {
  TokenPool* self = P(pool);
  switch (self->mode) {
    case Mode::Lock:
      if (self->owner == who) {
        PyErr_SetString(PyExc_RuntimeError, "Attempted to acquire an already held Lock");
        return -1;
      }
      if (self->owner || !self->q.empty()) return 0;
      Py_INCREF(who);
      self->owner = who;
      return 1;
    case Mode::Semaphore:
      if (!self->q.empty()) return 0;
      if (self->big) return big_take(self);
      if (self->value <= 0) return 0;
      --self->value;
      return 1;
    default: {
      int has = PyDict_Contains(self->borrowers, who);
      if (has < 0) return -1;
      if (has) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this borrower is already holding one of this CapacityLimiter's tokens");
        return -1;
      }
      if (PyDict_GET_SIZE(self->borrowers) >= self->total || !self->q.empty()) return 0;
      return PyDict_SetItem(self->borrowers, who, Py_None) < 0 ? -1 : 1;
    }
  }
}

int pool_release(PyObject* pool, PyObject* who, bool check) {
  TokenPool* self = P(pool);
  switch (self->mode) {
    case Mode::Lock:
      if (check && self->owner != who) {
        lock_not_owner_error();
        return -1;
      }
      return grant_lock(self);
    case Mode::Semaphore: {
      int full = self->big ? big_full(self) : self->max_value >= 0 && self->value >= self->max_value;
      if (full < 0) return -1;
      if (check && full) {
        PyErr_SetString(PyExc_ValueError, "semaphore released too many times");
        return -1;
      }
      Waiter* w = pop_live(self->q);
      if (w) return wake(w);
      if (PyErr_Occurred()) return -1;
      if (!self->big && self->value == PY_SSIZE_T_MAX && go_big(self) < 0) return -1;
      if (self->big) return big_add(self, 1);
      ++self->value;
      return 0;
    }
    default: {
      PyObject* key = who;
      int rc = PyDict_DelItem(self->borrowers, key);
      if (rc < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
        PyErr_Clear();
        if (!check) return 0;
        PyErr_SetString(PyExc_RuntimeError,
                        "this borrower isn't holding any of this CapacityLimiter's tokens");
        return -1;
      }
      return fill_limiter(self);
    }
  }
}

int register_pools(PyObject* module) {
  LockType = add_type(module, &lock_spec);
  SemaphoreType = add_type(module, &sem_spec);
  LimiterType = add_type(module, &lim_spec);
  return (LockType && SemaphoreType && LimiterType) ? 0 : -1;
}

}  // namespace anyio::sync
