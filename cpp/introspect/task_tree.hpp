// Introspection for anyio.lowlevel.get_task_tree(): cold functions that read
// what the core already holds (scope links, parked awaitables) when a snapshot
// is taken.
//
// Each component whose awaitable a task can be parked in declares one
// `*_waits_on` reader in its own header and defines it in its own file (both
// marked "introspection (task tree)"); task_tree.cpp dispatches to them. Each
// returns, as a new reference, a tuple describing what the awaitable waits on,
// Py_None if `obj` is not of that component's type, or nullptr with an error
// set.
#pragma once

#include <chrono>

#include "common/py.hpp"

namespace anyio {

// The clock behind "parked for N s" and "running for N s in its thread", in
// seconds. Read only where a task actually parks (never on an uncontended
// operation) and where a worker thread starts a job (off the event loop's
// thread); the readers subtract from it at snapshot time.
inline double introspect_clock() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int register_task_tree(PyObject* module);

}  // namespace anyio
