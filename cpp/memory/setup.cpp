// statistics() of a memory object stream and the registration of its types.
// anyio.streams.memory hands over the statistics class as the
// memory_statistics hook when it is imported.
#include "memory/memory.hpp"

namespace anyio::memory {

PyObject* state_statistics(MemoryStreamState* st) {
  PyObject* cls = ANYIO_REQUIRE_HOOK(memory_statistics);
  if (!cls) return nullptr;
  PyObject* args[6];
  args[0] = PyLong_FromSize_t(st->buffer->size());
  args[1] = Py_NewRef(st->max_obj);
  args[2] = PyLong_FromSsize_t(st->open_send);
  args[3] = PyLong_FromSsize_t(st->open_recv);
  args[4] = PyLong_FromSsize_t(st->senders.size());
  args[5] = PyLong_FromSsize_t(st->receivers.size());
  PyObject* r = nullptr;
  if (args[0] && args[2] && args[3] && args[4] && args[5]) r = PyObject_Vectorcall(cls, args, 6, nullptr);
  for (PyObject* a : args) Py_XDECREF(a);
  return r;
}

}  // namespace anyio::memory

namespace anyio {

int register_memory(PyObject* module) {
  if (memory::register_state_type(module) < 0) return -1;
  if (memory::register_op_type(module) < 0) return -1;
  return memory::register_stream_types(module);
}

}  // namespace anyio
