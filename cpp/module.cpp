// The extension module anyio._cpp: pybind11 builds the module; each component
// registers its CPython-slot types and functions on it.
#include <pybind11/pybind11.h>

#include "common/py.hpp"

namespace anyio {
int register_runtime(PyObject* module);
int register_cancel(PyObject* module);
int register_task_coro(PyObject* module);
int register_task_group(PyObject* module);
int register_checkpoint(PyObject* module);
int register_threads(PyObject* module);
int register_sync(PyObject* module);
int register_memory(PyObject* module);
int register_task_tree(PyObject* module);  // introspection (task tree)
}  // namespace anyio

namespace py = pybind11;

namespace {

void init_globals() {
  using anyio::G;
  py::module_ events = py::module_::import("asyncio.events");
  py::module_ asyncio = py::module_::import("asyncio");
  G.get_running_loop = py::object(events.attr("_get_running_loop")).release().ptr();
  G.current_task = py::object(asyncio.attr("current_task")).release().ptr();
  G.CancelledError = py::object(asyncio.attr("CancelledError")).release().ptr();
  G.InvalidStateError = py::object(asyncio.attr("InvalidStateError")).release().ptr();
  G.Future = py::object(asyncio.attr("Future")).release().ptr();
  G.TimeoutError = PyExc_TimeoutError;
  G.base_event_loop = py::object(asyncio.attr("BaseEventLoop")).release().ptr();
  auto intern = [](const char* s) {
    PyObject* o = PyUnicode_InternFromString(s);
    if (!o) throw py::error_already_set();
    return o;
  };
  G.s_cancel = intern("cancel");
  G.s_done = intern("done");
  G.s_set_result = intern("set_result");
  G.s_set_exception = intern("set_exception");
  G.s_result = intern("result");
  G.s_create_future = intern("create_future");
  G.s_create_task = intern("create_task");
  G.s_add_done_callback = intern("add_done_callback");
  G.s_remove_done_callback = intern("remove_done_callback");
  G.s_call_soon = intern("call_soon");
  G.s_call_at = intern("call_at");
  G.s_time = intern("time");
  G.s_throw = intern("throw");
  G.s_send = intern("send");
  G.s_close = intern("close");
  G.s_uncancel = intern("uncancel");
  G.s_cancelling = intern("cancelling");
  G.s_fut_waiter = intern("_fut_waiter");
  G.s_get_name = intern("get_name");
  G.s_name = intern("name");
  G.s_asyncio_future_blocking = intern("_asyncio_future_blocking");
  G.s_cancelled = intern("cancelled");
  G.s_exception = intern("exception");
  G.s_get_loop = intern("get_loop");
  G.s_must_cancel = intern("_must_cancel");
  G.s_qualname = intern("__qualname__");
  G.s_module = intern("__module__");
  G.s_asyncio_exit = intern("_asyncio_exit");
  G.s_trio_aenter = intern("_trio_aenter");
  G.s_trio_exit = intern("_trio_exit");
  G.s_trio_start_soon = intern("_trio_start_soon");
}

void check(int rc) {
  if (rc < 0) throw py::error_already_set();
}

}  // namespace

PYBIND11_MODULE(_cpp, m) {
  m.doc() = "The C++ core of anyio: cancel scopes, task groups, primitives and checkpoints.";
  init_globals();
  PyObject* mod = m.ptr();
  check(anyio::register_runtime(mod));
  check(anyio::register_cancel(mod));
  check(anyio::register_task_coro(mod));
  check(anyio::register_task_group(mod));
  check(anyio::register_checkpoint(mod));
  check(anyio::register_threads(mod));
  check(anyio::register_sync(mod));
  check(anyio::register_memory(mod));
  check(anyio::register_task_tree(mod));  // introspection (task tree)
}
