// Introspection for anyio.lowlevel.get_task_tree(): cold functions that read
// what the core already holds (scope links, parked awaitables) when a snapshot
// is taken. Nothing here runs, or is paid for, unless a snapshot is asked for.
//
// Each component whose awaitable a task can be parked in defines one
// `*_waits_on` function in its own file (marked "introspection (task tree)");
// task_tree.cpp dispatches to them. Each returns, as a new reference, a tuple
// describing what the awaitable waits on, Py_None if `obj` is not of that
// component's type, or nullptr with an error set.
#pragma once

#include "common/py.hpp"

namespace anyio {

namespace sync {
// SyncOp (Event.wait, Lock/Semaphore/CapacityLimiter acquire):
// ("event" | "acquire", primitive, parked: bool)
PyObject* op_waits_on(PyObject* obj);
}  // namespace sync

// MemoryStreamOp: ("send" | "receive", stream, parked: bool)
PyObject* memory_op_waits_on(PyObject* obj);

namespace threads {
// ThreadCall (to_thread.run_sync):
// ("thread", func or None, status: str, limiter or None, acquiring_token: bool)
PyObject* call_waits_on(PyObject* obj);
}  // namespace threads

int register_task_tree(PyObject* module);

}  // namespace anyio
