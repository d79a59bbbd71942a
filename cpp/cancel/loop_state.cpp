// Per-loop state (deadline heap, foreign-task table) and task-state lookup.
#include <time.h>

#include <unordered_map>

#include "cancel/core.hpp"

namespace anyio {

PyTypeObject* LoopStateType = nullptr;
PyTypeObject* HostStateType = nullptr;
ANYIO_TLS TaskState* tls_current = nullptr;

namespace {

// Loop -> state. The map owns one reference to each state until its loop dies.
std::unordered_map<PyObject*, LoopState*> g_states;
// A per-thread cache of the last lookup. It borrows (a thread that ran a loop
// and exited must not keep its state alive): it counts only while
// tls_states_epoch equals g_states_epoch, which every retirement bumps.
uint64_t g_states_epoch = 1;
ANYIO_TLS PyObject* tls_loop = nullptr;
ANYIO_TLS LoopState* tls_state = nullptr;
ANYIO_TLS uint64_t tls_states_epoch = 0;

// HostState: the TaskState of an asyncio task this package did not spawn.
struct HostState {
  PyObject_HEAD
  TaskState st;
};

int host_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return traverse_task_state(&reinterpret_cast<HostState*>(self)->st, visit, arg);
}

int host_clear(PyObject* self) {
  clear_task_state(&reinterpret_cast<HostState*>(self)->st);
  return 0;
}

const TypeSpec host_spec = {
    .name = "anyio._cpp.HostState",
    .traverse = host_traverse,
    .clear = host_clear,
    .flags = Py_TPFLAGS_DISALLOW_INSTANTIATION,
};

// --- LoopState -------------------------------------------------------------

using LoopStateRefs = OwnedRefs<&LoopState::hosts, &LoopState::timer_handle, &LoopState::fire_cb,
                                &LoopState::recheck_cb, &LoopState::loop_ref>;

int ls_traverse(PyObject* self_obj, visitproc visit, void* arg) {
  if (int r = LoopStateRefs::traverse(self_obj, visit, arg)) return r;
  auto* self = reinterpret_cast<LoopState*>(self_obj);
  if (self->heap) {
    for (CancelScope* s : *self->heap) Py_VISIT(reinterpret_cast<PyObject*>(s));
  }
  return 0;
}

void ls_drop_heap(LoopState* self) {
  if (!self->heap) return;
  std::vector<CancelScope*> heap;
  heap.swap(*self->heap);
  for (CancelScope* s : heap) {
    s->heap_index = -1;
    Py_DECREF(s);
  }
}

int ls_clear(PyObject* self_obj) {
  auto* self = reinterpret_cast<LoopState*>(self_obj);
  self->alive = false;
  LoopStateRefs::clear_fields(self);
  ls_drop_heap(self);
  return 0;
}

// After tp_clear in the dealloc.
void ls_free_heap(PyObject* self_obj) {
  auto* self = reinterpret_cast<LoopState*>(self_obj);
  delete self->heap;
  self->heap = nullptr;
}

// The weakref callback: the loop is gone, so is everything tied to it.
PyObject* ls_retire(PyObject* self_obj, PyObject* /*ref*/) {
  auto* self = reinterpret_cast<LoopState*>(self_obj);
  auto it = g_states.find(self->loop);
  if (it != g_states.end() && it->second == self) g_states.erase(it);
  g_states_epoch++;
  self->alive = false;
  self->loop = nullptr;
  PyObject* hosts = self->hosts;
  self->hosts = nullptr;
  Py_XDECREF(hosts);
  ls_drop_heap(self);
  Py_CLEAR(self->timer_handle);
  Py_DECREF(self);  // the map's reference
  Py_RETURN_NONE;
}

void heap_swap(std::vector<CancelScope*>& h, size_t a, size_t b) {
  std::swap(h[a], h[b]);
  h[a]->heap_index = static_cast<Py_ssize_t>(a);
  h[b]->heap_index = static_cast<Py_ssize_t>(b);
}

void sift_up(std::vector<CancelScope*>& h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p]->deadline <= h[i]->deadline) break;
    heap_swap(h, p, i);
    i = p;
  }
}

void sift_down(std::vector<CancelScope*>& h, size_t i) {
  size_t n = h.size();
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l]->deadline < h[m]->deadline) m = l;
    if (r < n && h[r]->deadline < h[m]->deadline) m = r;
    if (m == i) break;
    heap_swap(h, i, m);
    i = m;
  }
}

// The armed timer's handle (a new reference), or null if it is gone: the loop
// dropped it, as close() does.
PyObject* armed_timer(LoopState* ls) {
  if (!ls->timer_is_weak) {
    Py_XINCREF(ls->timer_handle);
    return ls->timer_handle;
  }
#if PY_VERSION_HEX >= 0x030D0000
  PyObject* handle = nullptr;
  if (PyWeakref_GetRef(ls->timer_handle, &handle) < 0) PyErr_Clear();
  return handle;
#else
  PyObject* handle = PyWeakref_GetObject(ls->timer_handle);
  if (handle == Py_None) return nullptr;
  Py_INCREF(handle);
  return handle;
#endif
}

// Arms one loop timer for the earliest deadline, unless one is armed already at
// or before it (a timer that fires early finds nothing due and re-arms).
int rearm(LoopState* ls) {
  auto& h = *ls->heap;
  if (h.empty() || !ls->alive) return 0;
  double when = h.front()->deadline;
  if (ls->timer_handle && ls->timer_when <= when) return 0;
  if (ls->timer_handle) {
    PyObject* handle = armed_timer(ls);
    Py_CLEAR(ls->timer_handle);
    if (handle) {
      PyObject* r = call_method0(handle, G.s_cancel);
      Py_DECREF(handle);
      if (!r) return -1;
      Py_DECREF(r);
    }
  }
  PyObject* pywhen = PyFloat_FromDouble(when);
  if (!pywhen) return -1;
  PyObject* handle = call_method2(ls->loop, G.s_call_at, pywhen, ls->fire_cb);
  Py_DECREF(pywhen);
  if (!handle) return -1;
  ls->timer_handle = PyWeakref_NewRef(handle, nullptr);
  ls->timer_is_weak = ls->timer_handle != nullptr;
  if (ls->timer_is_weak) {
    Py_DECREF(handle);
  } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
    PyErr_Clear();  // a loop whose handles take no weak references
    ls->timer_handle = handle;
  } else {
    Py_DECREF(handle);
    return -1;
  }
  ls->timer_when = when;
  return 0;
}

PyObject* ls_fire(PyObject* self_obj, PyObject* /*unused*/) {
  auto* ls = reinterpret_cast<LoopState*>(self_obj);
  Py_CLEAR(ls->timer_handle);
  if (!ls->alive) Py_RETURN_NONE;
  double now = loop_time(ls);
  if (now < 0 && PyErr_Occurred()) return nullptr;
  double limit = now > ls->timer_when ? now : ls->timer_when;
  auto& h = *ls->heap;
  while (!h.empty() && h.front()->deadline <= limit) {
    CancelScope* s = h.front();
    Py_INCREF(s);
    heap_remove(ls, s);
    int rc = scope_do_cancel(s, nullptr, true);
    Py_DECREF(s);
    if (rc < 0) return nullptr;
  }
  if (rearm(ls) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* ls_recheck(PyObject* /*self*/, PyObject* host) {
  if (Py_TYPE(host) != HostStateType) Py_RETURN_NONE;
  TaskState* t = &reinterpret_cast<HostState*>(host)->st;
  t->delivery_pending = false;
  if (!t->finished && deliver(t) < 0) return nullptr;
  Py_RETURN_NONE;
}

// Done callback of a foreign task: forget its state.
PyObject* ls_host_done(PyObject* self_obj, PyObject* task) {
  auto* ls = reinterpret_cast<LoopState*>(self_obj);
  if (!ls->hosts) Py_RETURN_NONE;
  PyObject* hs = PyDict_GetItemWithError(ls->hosts, task);
  if (!hs) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
  }
  Py_INCREF(hs);
  auto* st = &reinterpret_cast<HostState*>(hs)->st;
  st->finished = true;
  task_detach_all(st);
  int rc = PyDict_DelItem(ls->hosts, task);
  Py_DECREF(hs);
  if (rc < 0) return nullptr;
  Py_RETURN_NONE;
}

PyMethodDef ls_fire_def = {"_fire_deadlines", ls_fire, METH_NOARGS, nullptr};
PyMethodDef ls_recheck_def = {"_recheck", ls_recheck, METH_O, nullptr};
PyMethodDef ls_retire_def = {"_retire", ls_retire, METH_O, nullptr};
PyMethodDef ls_host_done_def = {"_host_done", ls_host_done, METH_O, nullptr};

const TypeSpec ls_spec = {
    .name = "anyio._cpp.LoopState",
    .traverse = ls_traverse,
    .clear = ls_clear,
    .flags = Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .dealloc = gc_dealloc<nullptr, ls_free_heap>,
};

#if defined(__linux__)
// True if type(loop).time is asyncio.BaseEventLoop.time (not overridden).
bool uses_stock_clock(PyObject* loop) {
  PyObject* base = PyObject_GetAttrString(G.base_event_loop, "time");
  PyObject* mine = PyObject_GetAttr(reinterpret_cast<PyObject*>(Py_TYPE(loop)), G.s_time);
  bool same = base && mine && base == mine;
  Py_XDECREF(base);
  Py_XDECREF(mine);
  PyErr_Clear();
  return same;
}
#else
bool uses_stock_clock(PyObject*) { return false; }
#endif

LoopState* new_loop_state(PyObject* loop) {
  auto* ls = PyObject_GC_New(LoopState, LoopStateType);
  if (!ls) return nullptr;
  ls->loop = loop;
  ls->loop_ref = nullptr;
  ls->hosts = nullptr;
  ls->heap = new std::vector<CancelScope*>();
  ls->timer_handle = nullptr;
  ls->timer_is_weak = false;
  ls->timer_when = 0;
  ls->fire_cb = nullptr;
  ls->recheck_cb = nullptr;
  ls->alive = true;
  ls->stock_clock = false;
  PyObject_GC_Track(ls);
  PyObject* self = reinterpret_cast<PyObject*>(ls);
  ls->hosts = PyDict_New();
  ls->fire_cb = PyCFunction_New(&ls_fire_def, self);
  ls->recheck_cb = PyCFunction_New(&ls_recheck_def, self);
  PyObject* retire = PyCFunction_New(&ls_retire_def, self);
  if (!ls->hosts || !ls->fire_cb || !ls->recheck_cb || !retire) {
    Py_XDECREF(retire);
    Py_DECREF(ls);
    return nullptr;
  }
  ls->loop_ref = PyWeakref_NewRef(loop, retire);
  Py_DECREF(retire);
  if (!ls->loop_ref) {
    Py_DECREF(ls);
    return nullptr;
  }
  ls->stock_clock = uses_stock_clock(loop);
  return ls;
}

}  // namespace

PyObject* running_loop_slow() {
  PyObject* loop = PyObject_Vectorcall(G.get_running_loop, nullptr, 0, nullptr);
  if (!loop) return nullptr;
  Py_DECREF(loop);  // the running loop is kept alive by the thread running it
  return loop == Py_None ? nullptr : loop;
}

LoopState* loop_state_for(PyObject* loop) {
  if (loop == tls_loop && tls_states_epoch == g_states_epoch) return tls_state;
  LoopState* ls;
  auto it = g_states.find(loop);
  if (it != g_states.end() && it->second->alive) {
    ls = it->second;
  } else {
    ls = new_loop_state(loop);
    if (!ls) return nullptr;
    g_states[loop] = ls;  // owns the new reference
  }
  tls_state = ls;
  tls_loop = loop;
  tls_states_epoch = g_states_epoch;
  return ls;
}

double loop_time(LoopState* ls) {
  if (ls->stock_clock) {
    // asyncio.BaseEventLoop.time() is time.monotonic(), which on this
    // platform is clock_gettime(CLOCK_MONOTONIC): same clock, no Python call.
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
      return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    }
  }
  PyObject* t = call_method0(ls->loop, G.s_time);
  if (!t) return -1;
  double v = PyFloat_AsDouble(t);
  Py_DECREF(t);
  return v;
}

TaskState* current_task_state(bool create) {
  if (tls_current) return tls_current;
  PyObject* loop = running_loop();
  if (!loop) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "no running event loop");
    return nullptr;
  }
  PyObject* task = PyObject_CallOneArg(G.current_task, loop);
  if (!task) return nullptr;
  if (task == Py_None) {
    Py_DECREF(task);
    PyErr_SetString(PyExc_RuntimeError, "This must be called from within a task");
    return nullptr;
  }
  LoopState* ls = loop_state_for(loop);
  if (!ls) {
    Py_DECREF(task);
    return nullptr;
  }
  PyObject* hs = PyDict_GetItemWithError(ls->hosts, task);
  if (hs || PyErr_Occurred() || !create) {
    Py_DECREF(task);
    if (!hs && !PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "task has no cancel scope state");
    return hs ? &reinterpret_cast<HostState*>(hs)->st : nullptr;
  }
  auto* h = PyObject_GC_New(HostState, HostStateType);
  if (!h) {
    Py_DECREF(task);
    return nullptr;
  }
  new (&h->st) TaskState();
  h->st.owner = reinterpret_cast<PyObject*>(h);
  h->st.task = task;  // takes the reference
  Py_INCREF(ls);
  h->st.loop = ls;
  PyObject_GC_Track(h);
  int rc = PyDict_SetItem(ls->hosts, task, reinterpret_cast<PyObject*>(h));
  Py_DECREF(h);  // the dict owns it now
  if (rc < 0) return nullptr;
  PyObject* cb = PyCFunction_New(&ls_host_done_def, reinterpret_cast<PyObject*>(ls));
  if (!cb) return nullptr;
  PyObject* r = call_method1(task, G.s_add_done_callback, cb);
  Py_DECREF(cb);
  if (!r) return nullptr;
  Py_DECREF(r);
  return &h->st;
}

TaskState* scope_task_state(bool* on_trio) {
  *on_trio = false;
  switch (current_backend()) {
    case Backend::Asyncio:
      return current_task_state(true);
    case Backend::Trio:
      *on_trio = true;
      return nullptr;
    case Backend::None:
      raise_no_event_loop();
      return nullptr;
    case Backend::Error:
      return nullptr;
  }
  return nullptr;
}

int traverse_task_state(TaskState* t, visitproc visit, void* arg) {
  Py_VISIT(t->task);
  Py_VISIT(reinterpret_cast<PyObject*>(t->loop));
  Py_VISIT(reinterpret_cast<PyObject*>(t->scope));
  Py_VISIT(reinterpret_cast<PyObject*>(t->root));
  return 0;
}

void clear_task_state(TaskState* t) {
  task_detach_all(t);
  Py_CLEAR(t->task);
  Py_CLEAR(t->loop);
}

int heap_add(LoopState* ls, CancelScope* s) {
  auto& h = *ls->heap;
  Py_INCREF(s);
  s->heap_index = static_cast<Py_ssize_t>(h.size());
  h.push_back(s);
  sift_up(h, h.size() - 1);
  return rearm(ls);
}

void heap_remove(LoopState* ls, CancelScope* s) {
  if (s->heap_index < 0 || !ls->heap) return;
  auto& h = *ls->heap;
  size_t i = static_cast<size_t>(s->heap_index);
  size_t last = h.size() - 1;
  if (i != last) {
    heap_swap(h, i, last);
  }
  h.pop_back();
  if (i != last) {
    sift_down(h, i);
    sift_up(h, i);
  }
  s->heap_index = -1;
  Py_DECREF(s);
}

int register_loop_state(PyObject* module) {
  LoopStateType = add_gc_type<LoopState>(module, ls_spec);
  HostStateType = add_gc_type<HostState>(module, host_spec);
  return (LoopStateType && HostStateType) ? 0 : -1;
}

}  // namespace anyio
