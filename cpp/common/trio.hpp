// Cheap questions about Trio, asked from C++ without going through Python glue.
#pragma once

#include "common/py.hpp"

namespace anyio {

// 1 if a Trio run is active in this thread, 0 if not (Trio not even imported
// counts as not), -1 with an error set.
int trio_running();

// trio.lowlevel.<name>, looked up once (borrowed; kept for the interpreter's
// life). Only valid to call once trio_running() returned 1.
PyObject* trio_lowlevel(const char* name);

// Raises NoEventLoopError (anyio's message) and returns nullptr.
PyObject* raise_no_event_loop();

}  // namespace anyio
