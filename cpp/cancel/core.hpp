// The asyncio side of cancel scopes: per-task state, the scope tree, level
// cancellation delivery and the per-loop deadline heap.
//
// Scopes form one tree across tasks: a task spawned into a task group hangs
// below the group's scope (its `root`), and every scope entered in a task hangs
// below the task's previous innermost scope (or its root). Cancelling a scope
// walks its subtree, stopping at shielded scopes, and wakes the tasks found.
//
// Delivery is event driven and goes through asyncio's own task.cancel(), so
// the CancelledError arrives through the loop the way asyncio code expects
// (docs/design.md, "Delivery without polling"). Tasks spawned by this package
// run their coroutine through a TaskCoro wrapper that sees every suspension:
// a task that is effectively cancelled as it suspends gets task.cancel() there,
// every time, with no polling. Tasks we did not spawn (the task that
// asyncio.run created, say) get task.cancel() when the scope is cancelled, and
// are checked again only after they have run, because a call_soon queued
// behind their wake-up fires then.
//
// Files: delivery.cpp (the tree and how cancellation reaches tasks), scope.cpp
// (the CancelScope type), timeouts.cpp (fail_after & co.), loop_state.cpp
// (per-loop state, foreign tasks), task_coro.cpp (the wrapper and spawning),
// task_group*.cpp and task_handle.cpp (task groups).
#pragma once

#include <limits>
#include <vector>

#include "common/awaitable.hpp"
#include "common/gc_type.hpp"
#include "common/runtime.hpp"

namespace anyio {

struct CancelScope;
struct LoopState;

struct TaskState {
  PyObject* owner = nullptr;     // the PyObject this state is embedded in (not owned)
  PyObject* task = nullptr;      // the asyncio.Task (strong)
  LoopState* loop = nullptr;     // strong
  CancelScope* scope = nullptr;  // innermost scope entered in this task (strong)
  CancelScope* root = nullptr;   // scope the task was spawned into (strong) or null
  CancelScope* home = nullptr;   // scope whose task list holds us (scope ? scope : root)
  TaskState* lprev = nullptr;    // links in home->first_task
  TaskState* lnext = nullptr;
  CancelScope* self_scope = nullptr;  // set by TaskHandle.cancel(): cancels this task alone (strong)
  bool wrapped = false;
  bool shielded_yield = false;    // inside cancel_shielded_checkpoint
  bool delivery_pending = false;  // unwrapped: task.cancel() issued, not yet seen to run
  bool finished = false;
  bool started = false;       // wrapped: its coroutine has been stepped once
  int native_cancels = 0;     // unwrapped: task.cancel() calls not yet uncancelled
  size_t parent_id = 0;       // id() of the task that spawned this one, 0 if unknown
  long cancel_baseline = -1;  // task.cancelling() when we first saw it cancelled, -1 if not
};

// A scope is entered once and exited once. Zero is New: fresh scopes are zeroed.
enum class ScopeState : unsigned char { New = 0, Active = 1, Exited = 2 };

struct CancelScope {
  PyObject_HEAD
  double deadline;
  double created_at;     // clock reading when a timeout helper built it, else -1
  PyObject* reason;      // str or None (strong)
  PyObject* cancel_msg;  // message of the CancelledError we deliver (strong), once cancelled
  CancelScope* parent;   // strong while active
  PyObject* host_owner;  // strong: owner of host TaskState while active
  TaskState* host;
  CancelScope* first_child;
  CancelScope* sib_prev;
  CancelScope* sib_next;
  TaskState* first_task;
  LoopState* loop;        // strong while active (asyncio)
  Py_ssize_t heap_index;  // position in loop->heap, -1 if not there
  PyObject* trio_scope;   // the wrapped trio.CancelScope when used on trio (strong)
  PyObject* weakreflist;
  unsigned char shield;
  unsigned char cancel_called;
  unsigned char cancelled_caught;
  ScopeState state;
  unsigned char fail_on_timeout;
  unsigned char deadline_reached;
};

struct LoopState {
  PyObject_HEAD
  PyObject* loop;                   // borrowed: kept valid by `loop_ref` invalidation
  PyObject* loop_ref;               // weakref to the loop whose callback retires this state
  PyObject* hosts;                  // dict: asyncio.Task -> HostState for tasks we did not spawn
  std::vector<CancelScope*>* heap;  // min-heap on deadline, strong refs
  // The armed loop.call_at handle, or null: a weak reference when the handle
  // supports one. The loop's schedule keeps an armed handle alive; after
  // loop.close() a strong reference here would be the handle's last, and the
  // handle holds its loop, so the loop and this state would never be freed.
  PyObject* timer_handle;
  bool timer_is_weak;  // timer_handle is a weakref to the handle
  double timer_when;
  PyObject* fire_cb;     // bound callable the timer calls
  PyObject* recheck_cb;  // bound callable: recheck(host_state)
  bool alive;
  bool stock_clock;  // loop.time() is asyncio's own time.monotonic(): read it directly
};

// No deadline (math.inf).
inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

// The life of an awaitable that yields at most once (a checkpoint, leaving a
// task group): not yet sent to, suspended at its one yield, finished.
enum class YieldState : unsigned char { Fresh, Yielded, Done };

// TaskCoro and HostState, the two owners of a TaskState, both embed it right
// after the object header.
inline TaskState* state_of_owner(PyObject* owner) {
  return reinterpret_cast<TaskState*>(reinterpret_cast<char*>(owner) + sizeof(PyObject));
}

// A yield that cancellation must not interrupt (the scheduling point after an
// operation that already completed): the wrapper and deliver() leave a task
// alone while its shielded_yield is set. `*holder` keeps the task's state
// alive until unshield_yield() lifts the shield; both are no-ops on null.
inline void shield_yield(TaskState* t, PyObject** holder) {
  if (!t) return;
  t->shielded_yield = true;
  Py_INCREF(t->owner);
  Py_XSETREF(*holder, t->owner);
}

inline void unshield_yield(PyObject** holder) {
  if (*holder) {
    state_of_owner(*holder)->shielded_yield = false;
    Py_CLEAR(*holder);
  }
}

// close() of an awaitable that yields once under such a shield and may have
// handed the rest of its work to `inner` (Checkpoint, TaskGroupExit).
template <class T>
PyObject* close_shielded_yield(PyObject* self_obj, PyObject*) {
  auto* self = reinterpret_cast<T*>(self_obj);
  unshield_yield(&self->shielded);
  self->state = YieldState::Done;
  if (self->inner) return inner_close(&self->inner);
  Py_RETURN_NONE;
}

// tp_clear of an awaitable whose `shielded` field may hold such a shield:
// lifts it, then drops the references Refs lists.
template <class Refs>
int clear_unshielding(PyObject* self) {
  unshield_yield(&reinterpret_cast<typename Refs::Object*>(self)->shielded);
  return Refs::clear(self);
}

// tls_current, the TaskState of the wrapped task running on this thread, is
// declared in common/runtime.hpp and defined with the task wrapper.

extern PyTypeObject* CancelScopeType;
extern PyTypeObject* LoopStateType;
extern PyTypeObject* HostStateType;
extern PyTypeObject* TaskCoroType;

// Returns the running asyncio loop (borrowed) or nullptr (no error set) if none.
// asyncio's own lookup calls getpid() each time (~150 ns on 3.11); inside a
// task we spawned the loop is known already, so look there first.
PyObject* running_loop_slow();
inline PyObject* running_loop() {
  if (tls_current && tls_current->loop && tls_current->loop->alive) return tls_current->loop->loop;
  return running_loop_slow();
}
// The LoopState of the running loop (borrowed), created on first use.
LoopState* loop_state_for(PyObject* loop);
// The state of the current asyncio task; creates one for foreign tasks when
// `create`. Returns nullptr with an error set when there is no current task.
TaskState* current_task_state(bool create);
// For a scope operation outside a wrapped task: the current asyncio task's
// state (created if need be), or nullptr with `*on_trio` set and no error on
// Trio, or nullptr with an error set (NoEventLoopError outside any loop).
TaskState* scope_task_state(bool* on_trio);
// GC support of a TaskState's owner (HostState, TaskCoro): its references, and
// dropping them (with every scope link).
int traverse_task_state(TaskState* t, visitproc visit, void* arg);
void clear_task_state(TaskState* t);

// The scope tree (delivery.cpp). A scope's children are the scopes entered
// directly below it, in any task.
void child_link(CancelScope* parent, CancelScope* s);
void child_unlink(CancelScope* parent, CancelScope* s);
// The scope whose cancellation reaches this task now, or nullptr.
CancelScope* effective_cancel(TaskState* t);
// Same, starting from an arbitrary scope.
CancelScope* effective_cancel_from(CancelScope* s);
// Remembers task.cancelling() the first time a scope's cancellation is seen
// to reach the task, so that native cancel requests made afterwards can be told
// apart from ours when a scope decides whether to swallow the error.
void observe_cancel(TaskState* t);
// A new CancelledError carrying the scope's message.
PyObject* make_cancelled_error(CancelScope* origin);
// Marks the scope cancelled (with `reason`), delivers to every task below it.
int scope_do_cancel(CancelScope* s, PyObject* reason, bool from_deadline);
// Task list management (tasks whose innermost scope is `s`).
void task_link(TaskState* t, CancelScope* s);
void task_unlink(TaskState* t);
// Called when a task finishes: drops every scope link.
void task_detach_all(TaskState* t);
// Wake one task so that it sees its cancellation (no-op if it cannot be now).
int deliver(TaskState* t);
// deliver() to every task that `s`'s cancellation reaches, oldest first.
int deliver_tree(CancelScope* s);
// task.cancel(msg) on behalf of a scope, counted for uncancel().
int cancel_task_natively(TaskState* t, CancelScope* origin);
// Deadline heap.
int heap_add(LoopState* ls, CancelScope* s);
void heap_remove(LoopState* ls, CancelScope* s);
double loop_time(LoopState* ls);
// A CancelledError a scope delivered, or one raised while handling one.
bool is_scope_cancelled_error(PyObject* exc);

// The CancelScope type (scope.cpp). A new scope, from the free list when it can.
CancelScope* cs_alloc(PyTypeObject* type, double deadline, bool shield);
// A deadline argument: a number, not NaN; nullptr means none (kInfinity).
int parse_deadline(PyObject* obj, double* out);
PyObject* new_detached_scope();
// `with scope:` from C: __enter__ (returns the scope, new reference) and
// __exit__ (returns True if the exception is swallowed).
PyObject* scope_enter(CancelScope* s);
PyObject* scope_exit(CancelScope* s, PyObject* type, PyObject* value, PyObject* tb);

// Module registration: register_cancel adds the loop state, scope and timeout
// parts; task_coro.cpp and the task group files add theirs.
int register_cancel(PyObject* module);
int register_loop_state(PyObject* module);
int register_timeouts(PyObject* module);
int register_task_coro(PyObject* module);

}  // namespace anyio
