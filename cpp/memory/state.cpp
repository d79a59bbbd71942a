// MemoryStreamState: the buffer, the open-handle counts and the FIFO queues of
// parked senders and receivers, and every transfer between them (a send, a
// receive, a close). The ops that park here are in op.cpp.
//
// Order of a hand-off (upstream anyio's): a transfer wakes the task it feeds
// but keeps running; the woken task continues at its next turn.
#include <vector>

#include "introspect/task_tree.hpp"
#include "memory/memory.hpp"

namespace anyio::memory {

PyTypeObject* MemoryStreamStateType = nullptr;

// --- queues ------------------------------------------------------------------

OpQueue& queue_of(MemoryStreamState* st, MemoryStreamOp* op) {
  return op->kind == OpKind::Send ? st->senders : st->receivers;
}

void q_push(OpQueue& q, MemoryStreamOp* op) {
  Py_INCREF(op);
  op->parked_at = introspect_clock();  // introspection (task tree)
  q.push(op);
}

void q_remove(OpQueue& q, MemoryStreamOp* op) { q.unlink(op); }

namespace {

// A parked receiver whose task was cancelled (asyncio: its future is done;
// Trio: Trio aborted its wait) must not be handed an item, since its task
// wakes into the cancellation.
bool receiver_live(MemoryStreamOp* w) {
  if (w->on_trio) return !w->aborted;
  PyObject* d = call_method0(w->waker, G.s_done);
  if (!d) {
    PyErr_WriteUnraisable(w->waker);
    return true;
  }
  bool live = d == Py_False;
  Py_DECREF(d);
  return live;
}

MemoryStreamOp* first_live_receiver(OpQueue& q) {
  while (MemoryStreamOp* w = q.front()) {
    if (receiver_live(w)) return w;
    q_remove(q, w);  // its own throw() sees it unlinked and just re-raises
    Py_DECREF(w);
  }
  return nullptr;
}

// Trio can reschedule a task only from its run's thread. Checked before the
// state changes, so a hand-off attempted from another thread (a misuse)
// raises to its caller and leaves the stream as it was.
bool wakeable(MemoryStreamOp* w) {
  if (!w->on_trio || w->thread == PyThread_get_thread_ident()) return true;
  PyErr_SetString(PyExc_RuntimeError, "must be called from async context");
  return false;
}

// Wakes an unlinked waiter whose outcome is set, unless its task is already
// on its way back (cancelled: the future is done, or Trio aborted the wait).
// Other failures (a closed loop, say) cannot be reported to the caller
// without undoing the transfer, so they are reported as unraisable.
void wake(MemoryStreamOp* w) {
  if (w->aborted) return;
  if (sync::wake_parked(w->waker, w->on_trio) == 0) return;
  if (!w->on_trio) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyObject* d = call_method0(w->waker, G.s_done);
    Py_XDECREF(d);
    if (d == Py_True) {  // cancelled meanwhile: its task is on its way
      Py_XDECREF(t);
      Py_XDECREF(v);
      Py_XDECREF(tb);
      return;
    }
    PyErr_Clear();
    PyErr_Restore(t, v, tb);
  }
  if (PyErr_Occurred()) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(w));
}

// Hands `item` (stolen) to the waiting receiver `w` (linked in `q`).
void grant_receiver(OpQueue& q, MemoryStreamOp* w, PyObject* item) {
  q_remove(q, w);
  Py_XSETREF(w->item, item);
  w->outcome = Outcome::Granted;
  wake(w);
  Py_DECREF(w);
}

// Takes the item of the waiting sender `w` (linked in `q`); returns it (new ref).
PyObject* take_from_sender(OpQueue& q, MemoryStreamOp* w) {
  q_remove(q, w);
  PyObject* item = w->item;
  w->item = nullptr;
  w->outcome = Outcome::Granted;
  wake(w);
  Py_DECREF(w);
  return item;
}

}  // namespace

// The item goes to the next live receiver, or back to the front of the
// buffer, where it was.
void give_back(MemoryStreamState* st, PyObject* item) {
  MemoryStreamOp* w = first_live_receiver(st->receivers);
  if (w && wakeable(w)) {
    grant_receiver(st->receivers, w, item);
    return;
  }
  if (w) PyErr_Clear();
  st->buffer->push_front(item);
}

// --- the transfers -----------------------------------------------------------

int send_try(MemoryStream* s, PyObject* item) {
  if (s->closed) {
    raise_anyio(&AnyioExceptions::ClosedResourceError);
    return -1;
  }
  MemoryStreamState* st = s->state;
  if (st->open_recv <= 0) {
    raise_anyio(&AnyioExceptions::BrokenResourceError);
    return -1;
  }
  if (MemoryStreamOp* w = first_live_receiver(st->receivers)) {
    if (!wakeable(w)) return -1;
    Py_INCREF(item);
    grant_receiver(st->receivers, w, item);
    return 1;
  }
  if (static_cast<Py_ssize_t>(st->buffer->size()) < st->max) {
    Py_INCREF(item);
    st->buffer->push_back(item);
    return 1;
  }
  return 0;
}

int recv_try(MemoryStream* s, PyObject** out) {
  if (s->closed) {
    raise_anyio(&AnyioExceptions::ClosedResourceError);
    return -1;
  }
  MemoryStreamState* st = s->state;
  // Every parked sender offers its item, a cancelled one too until its task
  // resumes and withdraws it.
  MemoryStreamOp* w = st->senders.front();
  if (w && !wakeable(w)) return -1;
  if (!st->buffer->empty()) {
    *out = st->buffer->front();
    st->buffer->pop_front();
    // A sender waits only while the buffer is full: its item takes the slot.
    if (w) st->buffer->push_back(take_from_sender(st->senders, w));
    return 1;
  }
  if (w) {
    *out = take_from_sender(st->senders, w);
    return 1;
  }
  if (st->open_send <= 0) {
    raise_anyio(&AnyioExceptions::EndOfStream);
    return -1;
  }
  return 0;
}

int stream_close(MemoryStream* s) {
  if (s->closed) return 0;
  MemoryStreamState* st = s->state;
  bool last = (s->is_send ? st->open_send : st->open_recv) == 1;
  OpQueue& own = s->is_send ? st->senders : st->receivers;
  OpQueue& peers = s->is_send ? st->receivers : st->senders;
  for (MemoryStreamOp* w = own.front(); w; w = w->next)
    if (w->stream == s && !wakeable(w)) return -1;
  if (last)
    for (MemoryStreamOp* w = peers.front(); w; w = w->next)
      if (!wakeable(w)) return -1;
  s->closed = 1;
  std::vector<MemoryStreamOp*> woken;
  auto take = [&](OpQueue& q, bool only_ours, Outcome outcome) {
    for (MemoryStreamOp* w = q.front(); w;) {
      MemoryStreamOp* n = w->next;
      if (!only_ours || w->stream == s) {
        q_remove(q, w);
        w->outcome = outcome;
        woken.push_back(w);
      }
      w = n;
    }
  };
  if (s->is_send) {
    st->open_send--;
    take(st->senders, true, Outcome::Closed);
    if (st->open_send == 0) take(st->receivers, false, Outcome::End);
  } else {
    st->open_recv--;
    take(st->receivers, true, Outcome::Closed);
    if (st->open_recv == 0) take(st->senders, false, Outcome::Broken);
  }
  for (MemoryStreamOp* w : woken) {
    wake(w);
    Py_DECREF(w);
  }
  return 0;
}

// --- the MemoryStreamState type ------------------------------------------------

namespace {

int state_traverse(PyObject* self_obj, visitproc visit, void* arg) {
  auto* self = reinterpret_cast<MemoryStreamState*>(self_obj);
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->max_obj);
  if (self->buffer) {
    for (PyObject* o : *self->buffer) Py_VISIT(o);
  }
  for (OpQueue* q : {&self->senders, &self->receivers}) {
    for (MemoryStreamOp* w = q->front(); w; w = w->next) Py_VISIT(reinterpret_cast<PyObject*>(w));
  }
  return 0;
}

int state_clear(PyObject* self_obj) {
  auto* self = reinterpret_cast<MemoryStreamState*>(self_obj);
  Py_CLEAR(self->max_obj);
  if (self->buffer) {
    std::deque<PyObject*> items;
    items.swap(*self->buffer);
    for (PyObject* o : items) Py_DECREF(o);
  }
  for (OpQueue* q : {&self->senders, &self->receivers}) {
    while (MemoryStreamOp* w = q->pop_front()) Py_DECREF(w);
  }
  return 0;
}

// After tp_clear in the dealloc.
void state_free_buffer(PyObject* self) { delete reinterpret_cast<MemoryStreamState*>(self)->buffer; }

// MemoryStreamState(max_buffer_size): the caller has validated the limit.
PyObject* state_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  PyObject* max_obj = nullptr;
  static const char* kwlist[] = {"max_buffer_size", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:MemoryStreamState", const_cast<char**>(kwlist),
                                   &max_obj)) {
    return nullptr;
  }
  Py_ssize_t max;
  if (PyLong_Check(max_obj)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(max_obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return nullptr;
    if (overflow < 0 || (overflow == 0 && v < 0))
      return raise(PyExc_ValueError, "max_buffer_size cannot be negative");
    max = (overflow > 0 || v > PY_SSIZE_T_MAX) ? PY_SSIZE_T_MAX : static_cast<Py_ssize_t>(v);
  } else if (PyFloat_Check(max_obj) && Py_IS_INFINITY(PyFloat_AS_DOUBLE(max_obj)) &&
             PyFloat_AS_DOUBLE(max_obj) > 0) {
    max = PY_SSIZE_T_MAX;
  } else {
    return raise(PyExc_ValueError, "max_buffer_size must be either an integer or math.inf");
  }
  auto* self = reinterpret_cast<MemoryStreamState*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  self->buffer = new std::deque<PyObject*>();
  new (&self->senders) OpQueue();
  new (&self->receivers) OpQueue();
  self->max = max;
  self->max_obj = Py_NewRef(max_obj);
  self->open_send = 0;
  self->open_recv = 0;
  return reinterpret_cast<PyObject*>(self);
}

PyObject* state_statistics_method(PyObject* self, PyObject*) {
  return state_statistics(reinterpret_cast<MemoryStreamState*>(self));
}

PyObject* state_repr(PyObject* self_obj) {
  auto* st = reinterpret_cast<MemoryStreamState*>(self_obj);
  return PyUnicode_FromFormat(
      "<MemoryStreamState max_buffer_size=%R buffered=%zd open_send=%zd open_receive=%zd>", st->max_obj,
      static_cast<Py_ssize_t>(st->buffer->size()), st->open_send, st->open_recv);
}

PyMethodDef state_methods[] = {
    {"statistics", state_statistics_method, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

const TypeSpec state_spec = {
    .name = "anyio._cpp.MemoryStreamState",
    .traverse = state_traverse,
    .clear = state_clear,
    .methods = state_methods,
    .repr = state_repr,
    .new_ = state_new,
    .dealloc = gc_dealloc<nullptr, state_free_buffer>,
};

}  // namespace

int register_state_type(PyObject* module) {
  MemoryStreamStateType = add_gc_type<MemoryStreamState>(module, state_spec);
  return MemoryStreamStateType ? 0 : -1;
}

}  // namespace anyio::memory
