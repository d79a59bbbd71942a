// What anyio.streams.memory hands over when it is imported (the exception
// types, the statistics class, the Trio set-up), the statistics built from
// it, and the registration of the memory stream types.
#include "memory/memory.hpp"

namespace anyio::memory {

Config cfg;

bool configured() {
  if (cfg.WouldBlock) return true;
  PyErr_SetString(PyExc_RuntimeError, "anyio.streams.memory is not initialised");
  return false;
}

PyObject* state_statistics(MemoryStreamState* st) {
  if (!configured()) return nullptr;
  PyObject* args[6];
  args[0] = PyLong_FromSize_t(st->buffer->size());
  args[1] = Py_NewRef(st->max_obj);
  args[2] = PyLong_FromSsize_t(st->open_send);
  args[3] = PyLong_FromSsize_t(st->open_recv);
  args[4] = PyLong_FromSsize_t(st->senders->count);
  args[5] = PyLong_FromSsize_t(st->receivers->count);
  PyObject* r = nullptr;
  if (args[0] && args[2] && args[3] && args[4] && args[5])
    r = PyObject_Vectorcall(cfg.statistics_cls, args, 6, nullptr);
  for (PyObject* a : args) Py_XDECREF(a);
  return r;
}

namespace {

PyObject* fn_configure(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  constexpr Py_ssize_t kArgs = 6;
  if (nargs != kArgs) return raise(PyExc_TypeError, "_memory_configure expects 6 arguments");
  PyObject** slots[kArgs] = {&cfg.WouldBlock,          &cfg.EndOfStream,    &cfg.ClosedResourceError,
                             &cfg.BrokenResourceError, &cfg.statistics_cls, &cfg.trio_setup};
  for (Py_ssize_t i = 0; i < kArgs; ++i) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
  if (!cfg.s_abort) cfg.s_abort = PyUnicode_InternFromString("_abort");
  if (!cfg.s_abort) return nullptr;
  Py_RETURN_NONE;
}

PyObject* fn_configure_trio(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  constexpr Py_ssize_t kArgs = 6;
  if (nargs != kArgs) return raise(PyExc_TypeError, "_memory_configure_trio expects 6 arguments");
  PyObject** slots[kArgs] = {&cfg.abort_succeeded,   &cfg.trio_checkpoint, &cfg.trio_checkpoint_if_cancelled,
                             &cfg.trio_current_task, &cfg.trio_wait,       &cfg.trio_cancelled};
  for (Py_ssize_t i = 0; i < kArgs; ++i) Py_XSETREF(*slots[i], Py_NewRef(args[i]));
  Py_RETURN_NONE;
}

PyMethodDef module_fns[] = {
    {"_memory_configure", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_configure)),
     METH_FASTCALL,
     "_memory_configure(WouldBlock, EndOfStream, ClosedResourceError, BrokenResourceError, statistics_cls, "
     "trio_setup)\n--\n\nCalled once by anyio.streams.memory."},
    {"_memory_configure_trio", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_configure_trio)),
     METH_FASTCALL,
     "_memory_configure_trio(abort_succeeded, checkpoint, checkpoint_if_cancelled, "
     "current_task, wait_task_rescheduled, Cancelled)\n--\n\nCalled on first use on Trio."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace
}  // namespace anyio::memory

namespace anyio {

int register_memory(PyObject* module) {
  if (memory::register_state_type(module) < 0) return -1;
  if (memory::register_op_type(module) < 0) return -1;
  if (memory::register_stream_types(module) < 0) return -1;
  return PyModule_AddFunctions(module, memory::module_fns);
}

}  // namespace anyio
