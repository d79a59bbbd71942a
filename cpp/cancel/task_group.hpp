// Task groups on asyncio, shared by the files that implement them:
// task_group.cpp (the TaskGroupBase type: spawning, completion, entering and
// leaving), task_group_await.cpp (what __aenter__/__aexit__ return when they
// need no Python) and task_handle.cpp (TaskHandleBase and task names).
// Waiting for children and building exception groups is Python
// (anyio._taskgroup), as is everything on Trio.
#pragma once

#include "cancel/core.hpp"

namespace anyio {

// The base class of anyio's TaskGroup (the Python subclass in anyio._taskgroup
// adds start(), create_task() and the Trio side). Entering and leaving an
// asyncio group with nothing left to wait for never runs Python code; anything
// else (children still running, errors to collect) continues in the subclass's
// `_asyncio_exit` coroutine.
struct TaskGroupBase {
  PyObject_HEAD
  CancelScope* scope;    // the group's cancel scope (strong), made with the group
  PyObject* tasks;       // set of running child tasks, made at the first spawn
  PyObject* exceptions;  // list of child exceptions in completion order, made on demand
  PyObject* waiter;      // the host's future while it waits in __aexit__, or null
  PyObject* starting;    // dict: task -> future of a start() still waiting, on demand
  PyObject* done_cb;     // bound _on_done, made at the first spawn
  PyObject* nursery;     // Trio: the nursery and its manager (strong), for the subclass
  PyObject* nursery_cm;
  size_t host_id;  // id() of the task that entered the group
  unsigned char active;
  unsigned char entered;
  unsigned char trio;  // entered on Trio: the subclass does everything
};

inline Py_ssize_t pending(TaskGroupBase* self) { return self->tasks ? PySet_GET_SIZE(self->tasks) : 0; }

inline bool has_exceptions(TaskGroupBase* self) {
  return self->exceptions && PyList_GET_SIZE(self->exceptions) > 0;
}

// Wraps `coro` and starts it as an asyncio task below `root` (task_coro.cpp).
PyObject* spawn_wrapped(PyObject* coro, CancelScope* root, PyObject* name, PyObject* done_cb,
                        PyObject* context, size_t parent_id);

// What `await group.__aenter__()` and `await group.__aexit__(None, None, None)`
// return on asyncio when there is nothing to wait for (task_group_await.cpp).
PyObject* new_task_group_enter(PyObject* group);
PyObject* new_task_group_exit(PyObject* group);

// The TaskHandle class anyio._taskgroup registered (the task_handle_class
// hook, borrowed), or nullptr with an error set if it has not registered one
// or it is not a subclass of TaskHandleBase (task_handle.cpp).
PyTypeObject* task_handle_class();
// A handle of class `cls` for a child spawned by start_soon.
PyObject* new_task_handle(PyTypeObject* cls, PyObject* task, PyObject* coro, PyObject* name);
// The name a task running `func` gets when none is given.
PyObject* task_name_of(PyObject* func);

int register_task_group_awaitables(PyObject* module);
int register_task_handle(PyObject* module);

}  // namespace anyio
