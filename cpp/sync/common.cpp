// Waking waiters, the current task on either backend, and the small shared
// objects of the sync primitives.
#include "common/awaitable.hpp"
#include "sync/sync.hpp"

namespace anyio::sync {
namespace {

PyObject* g_done = nullptr;  // the one Done instance

// --- Done: an awaitable that finishes at once --------------------------------

PySendResult done_send(PyObject*, PyObject*, PyObject** out) {
  *out = Py_NewRef(Py_None);
  return PYGEN_RETURN;
}

PyObject* done_throw(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (check_throw_args(args, nargs) == 0) set_thrown(args, nargs);
  return nullptr;
}

PyObject* done_close(PyObject*, PyObject*) { Py_RETURN_NONE; }

int done_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int done_clear(PyObject*) { return 0; }

const AwaitableSpec done_spec = {
    .name = "anyio._cpp.Done",
    .basicsize = sizeof(PyObject),
    .send = done_send,
    .throw_ = done_throw,
    .close = done_close,
    .traverse = done_traverse,
    .clear = done_clear,
};

}  // namespace

PyObject* current_task_obj(Backend* backend_out) {
  if (tls_current && tls_current->task) {
    if (backend_out) *backend_out = Backend::Asyncio;
    return Py_NewRef(tls_current->task);
  }
  Backend b = current_backend();
  if (backend_out) *backend_out = b;
  switch (b) {
    case Backend::Asyncio: {
      PyObject* task = PyObject_CallOneArg(G.current_task, running_loop());
      if (task == Py_None) {
        Py_DECREF(task);
        return raise(PyExc_RuntimeError, "this must be called from within a task");
      }
      return task;
    }
    case Backend::Trio: {
      const TrioLowlevel* tl = trio();
      return tl ? PyObject_CallNoArgs(tl->current_task) : nullptr;
    }
    case Backend::None:
      return raise_no_event_loop();
    default:
      return nullptr;
  }
}

Waiter* pop_live(WaitQueue<Waiter>& q) {
  while (Waiter* w = q.pop_front()) {
    if (w->trio) return w;
    PyObject* done = call_method0(w->waker, G.s_done);
    if (!done) return nullptr;
    bool is_done = done == Py_True;
    Py_DECREF(done);
    if (!is_done) return w;
    // Cancelled while parked: its task will see CancelledError and must not
    // be handed anything.
  }
  return nullptr;
}

int wake_parked(PyObject* waker, bool trio_task) {
  PyObject* r;
  if (trio_task) {
    // A Trio waiter exists only inside a Trio run, so Trio is loaded.
    const TrioLowlevel* tl = trio();
    if (!tl) return -1;
    r = PyObject_CallOneArg(tl->reschedule, waker);
  } else {
    r = call_method1(waker, G.s_set_result, Py_None);
  }
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

int wake(Waiter* w) {
  w->granted = true;
  return wake_parked(w->waker, w->trio);
}

PyObject* done_awaitable() { return Py_NewRef(g_done); }

}  // namespace anyio::sync

namespace anyio {
namespace {

PyObject* fn_sync_current_task(PyObject*, PyObject*) { return sync::current_task_obj(); }

PyMethodDef sync_fns[] = {
    {"sync_current_task", fn_sync_current_task, METH_NOARGS,
     "The running asyncio.Task or Trio task, the identity lock owners are kept by."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_sync(PyObject* module) {
  if (PyModule_AddFunctions(module, sync_fns) < 0) return -1;
  PyTypeObject* done_type = add_awaitable_type(module, sync::done_spec);
  if (!done_type) return -1;
  sync::g_done = reinterpret_cast<PyObject*>(new_awaitable<PyObject>(done_type));
  if (!sync::g_done) return -1;
  PyObject_GC_Track(sync::g_done);
  if (sync::register_op(module) < 0) return -1;
  if (sync::register_events(module) < 0) return -1;
  return sync::register_pools(module);
}

}  // namespace anyio
