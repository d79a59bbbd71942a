// The runtime layer every component stands on: which backend runs, the
// objects of Trio and of anyio the core needs, the cancellation check of the
// current task, and the hooks Python hands to C++.
//
// Each of these has exactly one home here. A component never looks up
// trio.lowlevel, an anyio exception class or a Python helper by itself.
#pragma once

#include "common/py.hpp"

namespace anyio {

struct TaskState;
struct CancelScope;

// --- Backends -----------------------------------------------------------------

enum class Backend : int { Error = -1, None = 0, Asyncio = 1, Trio = 2 };

// Which backend runs in this thread: asyncio if a loop runs (a wrapped task's
// state answers without asking asyncio), Trio if a Trio run is active, None
// otherwise. Trio is never imported for this: no run can be active before it
// is. Error only with an exception set.
Backend current_backend();

// trio.lowlevel's functions and the few Trio objects the core uses, looked up
// once. Borrowed references kept for the life of the interpreter.
struct TrioLowlevel {
  PyObject* in_trio_run = nullptr;
  PyObject* current_task = nullptr;
  PyObject* reschedule = nullptr;
  PyObject* abort_succeeded = nullptr;  // trio.lowlevel.Abort.SUCCEEDED
  PyObject* checkpoint = nullptr;
  PyObject* checkpoint_if_cancelled = nullptr;
  PyObject* cancel_shielded_checkpoint = nullptr;
  PyObject* wait_task_rescheduled = nullptr;
  PyObject* current_trio_token = nullptr;
  PyObject* current_time = nullptr;                // trio.current_time
  PyObject* current_effective_deadline = nullptr;  // trio.current_effective_deadline
  PyObject* Cancelled = nullptr;                   // trio.Cancelled
};

// The Trio objects, importing Trio on first use; nullptr with an error set if
// Trio cannot be imported. Call it on the Trio path only.
const TrioLowlevel* trio();

// --- anyio's exceptions -----------------------------------------------------------

// anyio's exception classes the core raises (borrowed, interpreter lifetime).
struct AnyioExceptions {
  PyObject* WouldBlock = nullptr;
  PyObject* EndOfStream = nullptr;
  PyObject* ClosedResourceError = nullptr;
  PyObject* BrokenResourceError = nullptr;
  PyObject* BusyResourceError = nullptr;
  PyObject* NoEventLoopError = nullptr;
};

// The classes, importing anyio._exceptions on first use; nullptr with an
// error set on failure.
const AnyioExceptions* anyio_exceptions();

// Raises NoEventLoopError with anyio's message; returns nullptr.
PyObject* raise_no_event_loop();

// --- Cancellation of the current task -------------------------------------------

// The TaskState of the wrapped task whose coroutine is running on this thread
// (defined with the task wrapper, cpp/cancel).
extern ANYIO_TLS TaskState* tls_current;

// The cancel-scope state of the running asyncio task: the wrapped task's, or a
// foreign task's if it has entered a scope. nullptr with no error set
// otherwise (a task with no scopes cannot be cancelled by one), and on Trio.
// Inline for the wrapped task, the common case on every operation.
TaskState* foreign_task_state_if_any();
inline TaskState* task_state_if_any() { return tls_current ? tls_current : foreign_task_state_if_any(); }

// Sets the CancelledError that `origin`'s cancellation delivers; returns -1.
int set_scope_cancelled_error(CancelScope* origin);

// The check every operation makes before it starts: if a scope's cancellation
// reaches `t` (which may be null), notes it on the task (observe_cancel),
// sets the scope's CancelledError and returns 1. Returns 0 otherwise.
int raise_if_cancelled_slow(TaskState* t);
inline int raise_if_cancelled(TaskState* t) { return t ? raise_if_cancelled_slow(t) : 0; }

// --- Hooks: the Python the core calls ---------------------------------------------

// Every Python callable (or class) the core calls back into, declared once.
// Python modules hand them over on import with
// `_cpp.register_hooks(name=value, ...)`; a name not listed here is a
// TypeError. A component adds its hooks to its own section.
// clang-format off

// Cancel scopes and task groups.
#define ANYIO_CANCEL_HOOKS(X) \
  X(trio_scope_enter)          /* _cancel_trio: a CancelScope entered on Trio wraps a trio.CancelScope */ \
  X(trio_scope_exit)           /* _cancel_trio: (scope, exc_type, exc, tb) -> swallowed */ \
  X(trio_scope_cancel)         /* _cancel_trio: (scope, reason) */ \
  X(split_scope_cancellations) /* _glue: group -> (had scope cancellations, rest or None) */ \
  X(check_coroutine)           /* _glue: (func, value): TypeError unless a coroutine */ \
  X(finish_start_future)       /* _glue: (future, task, exc) -> the outcome went to start()'s caller */ \
  X(task_handle_class)         /* _taskgroup: TaskHandle, the class start_soon instantiates */

// Sync primitives: the Trio side of SyncOp (anyio._sync_trio).
#define ANYIO_SYNC_HOOKS(X) \
  X(sync_trio_acquire)      \
  X(sync_trio_event_wait)

// Memory object streams: the class statistics() returns.
#define ANYIO_MEMORY_HOOKS(X) \
  X(memory_statistics)

// Worker threads (anyio._threads, anyio._threads_trio).
#define ANYIO_THREAD_HOOKS(X) \
  X(new_default_thread_limiter) /* () -> the CapacityLimiter a loop's to_thread calls share */ \
  X(make_worker_token)          /* (pool) -> the EventLoopToken of a worker thread's loop */ \
  X(run_thread_request)         /* (request) -> coroutine running an async request, finishing it */ \
  X(spawn_thread_request)       /* (pool, request): an async request no waiting caller runs gets a task */ \
  X(trio_thread_call)           /* (call) -> coroutine: the Trio driver of a ThreadCall */

#define ANYIO_HOOKS(X) ANYIO_CANCEL_HOOKS(X) ANYIO_SYNC_HOOKS(X) ANYIO_MEMORY_HOOKS(X) ANYIO_THREAD_HOOKS(X)
// clang-format on

struct Hooks {
#define ANYIO_HOOK_FIELD(name) PyObject* name = nullptr;
  ANYIO_HOOKS(ANYIO_HOOK_FIELD)
#undef ANYIO_HOOK_FIELD
};

extern Hooks hooks;

// `hook` (a field of `hooks`) or, if Python has not registered it yet,
// nullptr with RuntimeError naming it.
PyObject* require_hook(PyObject* hook, const char* name);
#define ANYIO_REQUIRE_HOOK(name) ::anyio::require_hook(::anyio::hooks.name, #name)

// Calls `hook` (registered as `name`) with `args`; RuntimeError if Python has
// not registered it.
template <size_t N>
PyObject* call_hook(PyObject* hook, const char* name, PyObject* const (&args)[N]) {
  if (!require_hook(hook, name)) return nullptr;
  return PyObject_Vectorcall(hook, args, N, nullptr);
}

int register_runtime(PyObject* module);

}  // namespace anyio
