// The two handle base types of a memory object stream, MemorySendStreamBase
// and MemoryReceiveStreamBase (anyio.streams.memory subclasses them): their
// methods are CPython slots over the shared MemoryStreamState. Each handle
// counts as one open end of its state until it is closed; a clone is another.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "memory/memory.hpp"

namespace anyio::memory {
namespace {

PyTypeObject* SendBaseType = nullptr;
PyTypeObject* RecvBaseType = nullptr;

PyObject* make_stream(PyTypeObject* type, MemoryStreamState* st, bool is_send) {
  auto* s = reinterpret_cast<MemoryStream*>(type->tp_alloc(type, 0));
  if (!s) return nullptr;
  Py_INCREF(st);
  s->state = st;
  s->closed = 0;
  s->is_send = is_send ? 1 : 0;
  if (is_send)
    st->open_send++;
  else
    st->open_recv++;
  return reinterpret_cast<PyObject*>(s);
}

PyObject* stream_new_impl(PyTypeObject* type, PyObject* args, PyObject* kwargs, bool is_send) {
  PyObject* st = nullptr;
  static const char* kwlist[] = {"_state", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!", const_cast<char**>(kwlist), MemoryStreamStateType,
                                   &st))
    return nullptr;
  return make_stream(type, reinterpret_cast<MemoryStreamState*>(st), is_send);
}

PyObject* send_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return stream_new_impl(type, args, kwargs, true);
}
PyObject* recv_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return stream_new_impl(type, args, kwargs, false);
}

int stream_traverse(MemoryStream* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->state);
  return 0;
}

int stream_clear(MemoryStream* self) {
  Py_CLEAR(self->state);
  return 0;
}

// Unclosed streams are reported as upstream does; they are not closed here
// (a collected clone does not end the stream for the others).
void stream_finalize(PyObject* self_obj) {
  auto* s = reinterpret_cast<MemoryStream*>(self_obj);
  if (s->closed || !s->state) return;
  PyObject *t, *v, *tb;
  PyErr_Fetch(&t, &v, &tb);
  const char* name = Py_TYPE(self_obj)->tp_name;
  if (const char* dot = std::strrchr(name, '.')) name = dot + 1;
  char msg[256];
  std::snprintf(msg, sizeof msg, "Unclosed <%s at %jx>", name,
                static_cast<uintmax_t>(reinterpret_cast<uintptr_t>(self_obj)));
  if (PyErr_ResourceWarning(self_obj, 1, "%s", msg) < 0) PyErr_WriteUnraisable(self_obj);
  PyErr_Restore(t, v, tb);
}

void stream_dealloc(MemoryStream* self) {
  PyTypeObject* tp = Py_TYPE(self);
  // Python subclasses run the finalizer in their own dealloc before ours.
  if ((tp == SendBaseType || tp == RecvBaseType) &&
      PyObject_CallFinalizerFromDealloc(reinterpret_cast<PyObject*>(self)) < 0) {
    return;
  }
  PyObject_GC_UnTrack(self);
  stream_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyObject* stream_send_nowait(PyObject* self, PyObject* item) {
  int r = send_try(reinterpret_cast<MemoryStream*>(self), item);
  if (r == 1) Py_RETURN_NONE;
  if (r == 0) raise_anyio(&AnyioExceptions::WouldBlock);
  return nullptr;
}

PyObject* stream_receive_nowait(PyObject* self, PyObject*) {
  PyObject* out = nullptr;
  int r = recv_try(reinterpret_cast<MemoryStream*>(self), &out);
  if (r == 1) return out;
  if (r == 0) raise_anyio(&AnyioExceptions::WouldBlock);
  return nullptr;
}

PyObject* stream_send(PyObject* self, PyObject* item) {
  return new_op(reinterpret_cast<MemoryStream*>(self), OpKind::Send, item);
}

PyObject* stream_receive(PyObject* self, PyObject*) {
  return new_op(reinterpret_cast<MemoryStream*>(self), OpKind::Receive, nullptr);
}

PyObject* stream_anext(PyObject* self) {
  return new_op(reinterpret_cast<MemoryStream*>(self), OpKind::Anext, nullptr);
}

PyObject* stream_aiter(PyObject* self) { return Py_NewRef(self); }

PyObject* stream_clone(PyObject* self_obj, PyObject*) {
  auto* s = reinterpret_cast<MemoryStream*>(self_obj);
  if (s->closed) {
    raise_anyio(&AnyioExceptions::ClosedResourceError);
    return nullptr;
  }
  return make_stream(Py_TYPE(self_obj), s->state, s->is_send);
}

PyObject* stream_close_method(PyObject* self, PyObject*) {
  if (stream_close(reinterpret_cast<MemoryStream*>(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* stream_statistics(PyObject* self, PyObject*) {
  return state_statistics(reinterpret_cast<MemoryStream*>(self)->state);
}

PyObject* stream_get_closed(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<MemoryStream*>(self)->closed);
}

PyObject* stream_get_state(PyObject* self, void*) {
  return Py_NewRef(reinterpret_cast<PyObject*>(reinterpret_cast<MemoryStream*>(self)->state));
}

PyGetSetDef stream_getset[] = {
    {"_closed", stream_get_closed, nullptr, nullptr, nullptr},
    {"_state", stream_get_state, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef send_methods[] = {
    {"send", stream_send, METH_O,
     "send(item)\n--\n\nSend an item, waiting while the buffer is full (a checkpoint)."},
    {"send_nowait", stream_send_nowait, METH_O,
     "send_nowait(item)\n--\n\nSend an item at once or raise WouldBlock."},
    {"clone", stream_clone, METH_NOARGS, "clone()\n--\n\nA new send handle to the same stream."},
    {"close", stream_close_method, METH_NOARGS, "close()\n--\n\nClose this handle."},
    {"statistics", stream_statistics, METH_NOARGS, "statistics()\n--\n\nThe stream's current statistics."},
    {nullptr, nullptr, 0, nullptr},
};

PyMethodDef recv_methods[] = {
    {"receive", stream_receive, METH_NOARGS,
     "receive()\n--\n\nReceive the next item, waiting if there is none (a checkpoint)."},
    {"receive_nowait", stream_receive_nowait, METH_NOARGS,
     "receive_nowait()\n--\n\nReceive the next item at once or raise WouldBlock."},
    {"clone", stream_clone, METH_NOARGS, "clone()\n--\n\nA new receive handle to the same stream."},
    {"close", stream_close_method, METH_NOARGS, "close()\n--\n\nClose this handle."},
    {"statistics", stream_statistics, METH_NOARGS, "statistics()\n--\n\nThe stream's current statistics."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot send_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(send_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(stream_dealloc)},
    {Py_tp_finalize, reinterpret_cast<void*>(stream_finalize)},
    {Py_tp_traverse, reinterpret_cast<void*>(stream_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(stream_clear)},
    {Py_tp_methods, send_methods},
    {Py_tp_getset, stream_getset},
    {0, nullptr},
};

PyType_Slot recv_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(recv_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(stream_dealloc)},
    {Py_tp_finalize, reinterpret_cast<void*>(stream_finalize)},
    {Py_tp_traverse, reinterpret_cast<void*>(stream_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(stream_clear)},
    {Py_tp_methods, recv_methods},
    {Py_tp_getset, stream_getset},
    {Py_am_aiter, reinterpret_cast<void*>(stream_aiter)},
    {Py_am_anext, reinterpret_cast<void*>(stream_anext)},
    {0, nullptr},
};

constexpr unsigned long kStreamFlags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;

PyType_Spec send_spec = {"anyio._cpp.MemorySendStreamBase", sizeof(MemoryStream), 0, kStreamFlags,
                         send_slots};
PyType_Spec recv_spec = {"anyio._cpp.MemoryReceiveStreamBase", sizeof(MemoryStream), 0, kStreamFlags,
                         recv_slots};

}  // namespace

int register_stream_types(PyObject* module) {
  if (!(SendBaseType = add_type(module, &send_spec))) return -1;
  if (!(RecvBaseType = add_type(module, &recv_spec))) return -1;
  return 0;
}

}  // namespace anyio::memory
