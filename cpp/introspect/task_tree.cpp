// The C++ side of anyio.lowlevel.get_task_tree(): cold readers of the scope
// tree and of the awaitables a task can be parked in. The Python side
// (anyio._task_tree) walks each task's await chain and asks these functions
// about what it finds; no hot path records anything for them.
#include "introspect/task_tree.hpp"

#include "cancel/core.hpp"

namespace anyio {
namespace {

// A scope chain longer than this is corrupt (or cyclic): stop rather than spin.
constexpr int kMaxScopeDepth = 100000;

// The TaskState of an asyncio task, or nullptr (no error) if it has none: a
// task spawned by this package carries it in its TaskCoro wrapper; any other
// task has one only once it has entered a cancel scope.
TaskState* state_of_task(PyObject* task, PyObject* coro, PyObject* loop, bool* failed) {
  *failed = false;
  if (coro && Py_TYPE(coro) == TaskCoroType) return state_of_owner(coro);
  if (!loop || loop == Py_None) return nullptr;
  LoopState* ls = loop_state_for(loop);
  if (!ls) {
    *failed = true;
    return nullptr;
  }
  PyObject* hs = PyDict_GetItemWithError(ls->hosts, task);
  if (!hs) {
    if (PyErr_Occurred()) *failed = true;
    return nullptr;
  }
  return state_of_owner(hs);
}

// task_scopes(task, coro, loop) -> (scopes, root, root_host_task, parent_id) | None
//   scopes: the active cancel scopes entered in the task, innermost first;
//   root: the scope the task was spawned into (a task group's scope, or the
//         caller's scope for a from_thread task), or None;
//   root_host_task: the task that entered `root`, or None;
//   parent_id: id() of the task that spawned it, or None.
PyObject* fn_task_scopes(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) return raise(PyExc_TypeError, "task_scopes(task, coro, loop)");
  bool failed = false;
  TaskState* t = state_of_task(args[0], args[1], args[2], &failed);
  if (failed) return nullptr;
  if (!t) Py_RETURN_NONE;
  PyObject* scopes = PyList_New(0);
  if (!scopes) return nullptr;
  int depth = 0;
  for (CancelScope* s = t->scope; s && s != t->root && s->host == t && depth < kMaxScopeDepth;
       s = s->parent, ++depth) {
    if (PyList_Append(scopes, reinterpret_cast<PyObject*>(s)) < 0) {
      Py_DECREF(scopes);
      return nullptr;
    }
  }
  PyObject* root = t->root ? reinterpret_cast<PyObject*>(t->root) : Py_None;
  PyObject* host_task = (t->root && t->root->host && t->root->host->task) ? t->root->host->task : Py_None;
  PyObject* parent = t->parent_id ? PyLong_FromSize_t(t->parent_id) : Py_NewRef(Py_None);
  if (!parent) {
    Py_DECREF(scopes);
    return nullptr;
  }
  PyObject* r = Py_BuildValue("(NOON)", scopes, root, host_task, parent);
  return r;
}

// waits_on(awaitable) -> tuple | None: what one of this package's awaitables
// waits on (see task_tree.hpp for the tuples), None for anything else.
PyObject* fn_waits_on(PyObject*, PyObject* obj) {
  using Reader = PyObject* (*)(PyObject*);
  static const Reader readers[] = {sync::op_waits_on, memory_op_waits_on, threads::call_waits_on};
  for (Reader read : readers) {
    PyObject* r = read(obj);
    if (r != Py_None) return r;  // a tuple, or nullptr with an error set
    Py_DECREF(r);
  }
  Py_RETURN_NONE;
}

// scope_created_at(scope) -> float | None: the clock reading a timeout helper
// (fail_after, move_on_after) took when it built the scope.
PyObject* fn_scope_created_at(PyObject*, PyObject* obj) {
  if (Py_TYPE(obj) != CancelScopeType) return raise(PyExc_TypeError, "expected a CancelScope");
  double at = reinterpret_cast<CancelScope*>(obj)->created_at;
  if (at < 0) Py_RETURN_NONE;
  return PyFloat_FromDouble(at);
}

PyMethodDef module_fns[] = {
    {"task_tree_scopes", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_task_scopes)),
     METH_FASTCALL, "task_tree_scopes(task, coro, loop): an asyncio task's scopes, for get_task_tree()."},
    {"task_tree_waits_on", fn_waits_on, METH_O,
     "task_tree_waits_on(awaitable): what one of the core's awaitables waits on, or None."},
    {"task_tree_scope_created_at", fn_scope_created_at, METH_O,
     "task_tree_scope_created_at(scope): when a timeout helper made the scope, or None."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_task_tree(PyObject* module) { return PyModule_AddFunctions(module, module_fns); }

}  // namespace anyio
