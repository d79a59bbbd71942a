// Event: a flag that, once set, wakes every task waiting on it (FIFO).
#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

struct Event {
  PyObject_HEAD
  WaitQueue<Waiter> q;
  bool flag;
  PyObject* weakreflist;
};

PyTypeObject* EventType = nullptr;

PyObject* ev_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
    return raise(PyExc_TypeError, "Event() takes no arguments");
  }
  auto* self = reinterpret_cast<Event*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  new (&self->q) WaitQueue<Waiter>();
  self->flag = false;
  self->weakreflist = nullptr;
  return reinterpret_cast<PyObject*>(self);
}

// Construction happens in tp_new; subclasses may still call super().__init__().
int ev_init(PyObject*, PyObject*, PyObject*) { return 0; }

PyObject* ev_set(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<Event*>(self_obj);
  if (self->flag) Py_RETURN_NONE;
  self->flag = true;
  while (Waiter* w = pop_live(self->q)) {
    if (wake(w) < 0) return nullptr;
  }
  if (PyErr_Occurred()) return nullptr;
  Py_RETURN_NONE;
}

PyObject* ev_is_set(PyObject* self_obj, PyObject*) {
  return PyBool_FromLong(reinterpret_cast<Event*>(self_obj)->flag);
}

PyObject* ev_wait(PyObject* self_obj, PyObject*) {
  return make_sync_op(self_obj, SyncOpKind::EventWait, nullptr);
}

PyObject* ev_tasks_waiting(PyObject* self_obj, void*) {
  return PyLong_FromSsize_t(reinterpret_cast<Event*>(self_obj)->q.size());
}

void ev_dealloc(Event* self) {
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

int ev_traverse(Event* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

PyMethodDef ev_methods[] = {
    {"set", ev_set, METH_NOARGS, "set()\n--\n\nSet the flag and wake every waiting task."},
    {"is_set", ev_is_set, METH_NOARGS, "is_set()\n--\n\nWhether the flag is set."},
    {"wait", ev_wait, METH_NOARGS,
     "wait()\n--\n\nWait until the flag is set; a checkpoint if it already is."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef ev_getset[] = {
    {"_tasks_waiting", ev_tasks_waiting, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMemberDef ev_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Event, weakreflist), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot ev_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(ev_new)},
    {Py_tp_init, reinterpret_cast<void*>(ev_init)},
    {Py_tp_dealloc, reinterpret_cast<void*>(ev_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(ev_traverse)},
    {Py_tp_methods, ev_methods},
    {Py_tp_getset, ev_getset},
    {Py_tp_members, ev_members},
    {0, nullptr},
};

PyType_Spec ev_spec = {
    "anyio._cpp.EventBase",
    sizeof(Event),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    ev_slots,
};

}  // namespace

bool is_event(PyObject* o) { return PyObject_TypeCheck(o, EventType); }
bool event_is_set(PyObject* o) { return reinterpret_cast<Event*>(o)->flag; }
WaitQueue<Waiter>* event_queue(PyObject* o) { return &reinterpret_cast<Event*>(o)->q; }

int register_events(PyObject* module) {
  EventType = add_type(module, &ev_spec);
  return EventType ? 0 : -1;
}

}  // namespace anyio::sync
