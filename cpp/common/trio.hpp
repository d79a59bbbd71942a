// Cheap questions about Trio, asked from C++ without going through Python glue.
// Superseded by runtime.hpp (current_backend(), trio()); goes away once its
// last users have moved there.
#pragma once

#include "common/runtime.hpp"

namespace anyio {

// 1 if a Trio run is active in this thread, 0 if not (Trio not even imported
// counts as not), -1 with an error set.
int trio_running();

// trio.lowlevel.<name>, looked up once (borrowed; kept for the interpreter's
// life). Only valid to call once trio_running() returned 1.
PyObject* trio_lowlevel(const char* name);

}  // namespace anyio
