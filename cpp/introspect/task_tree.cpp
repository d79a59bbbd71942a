// The C++ side of anyio.lowlevel.get_task_tree(): one cold pass over every
// task that reads what the core holds anyway (scope links, parked awaitables,
// await chains) and hands the Python side (anyio._task_tree) one flat tuple
// per task to assemble. No hot path records anything for it.
#include "introspect/task_tree.hpp"

#include <frameobject.h>  // PyFrame_Check: not in Python.h before 3.11

#include <functional>
#include <unordered_map>
#include <vector>

#include "cancel/core.hpp"
#include "memory/memory.hpp"
#include "sync/sync.hpp"
#include "threads/threads.hpp"

namespace anyio {
namespace {

// A scope chain longer than this is corrupt (or cyclic): stop rather than spin.
constexpr int kMaxScopeDepth = 100000;
// Longest await chain followed; deeper chains are cut.
constexpr Py_ssize_t kMaxChain = 256;

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

// waits_on(awaitable) -> tuple | None: what one of this package's awaitables
// waits on (each component's header describes its reader's tuple), None for
// anything else.
PyObject* fn_waits_on(PyObject*, PyObject* obj) {
  using Reader = PyObject* (*)(PyObject*);
  static const Reader readers[] = {sync::op_waits_on, memory::op_waits_on, threads::call_waits_on};
  for (Reader read : readers) {
    PyObject* r = read(obj);
    if (r != Py_None) return r;  // a tuple, or nullptr with an error set
    Py_DECREF(r);
  }
  Py_RETURN_NONE;
}

// ---------------------------------------------------------------------------
// One pass per snapshot: everything the Python side needs about each task, as
// one flat tuple per task. Walking await chains and reading task attributes
// through the C API costs a fraction of the same steps as Python bytecode, and
// 10,000 parked tasks must snapshot in well under 50 ms.

// Attribute names, interned on the first snapshot and kept for the life of the
// interpreter (a snapshot is rare; module init does not pay for them). Trio's
// tasks, nurseries and cancel statuses are read through their private
// attributes, the ones its public properties wrap: a Trio that renamed them
// would make a snapshot raise AttributeError (the tests run on Trio).
struct Names {
  PyObject* cr_await;
  PyObject* cr_frame;
  PyObject* gi_yieldfrom;
  PyObject* gi_frame;
  PyObject* ag_await;
  PyObject* ag_frame;
  PyObject* qualname;
  PyObject* get_coro;
  PyObject* name;
  PyObject* coro;
  PyObject* next_send_fn;     // trio Task._next_send_fn: set while it is scheduled
  PyObject* child_nurseries;  // trio Task._child_nurseries (list)
  PyObject* children;         // trio Nursery._children (set of tasks)
  PyObject* cancel_status;    // trio Task/Nursery._cancel_status
  PyObject* scope;            // trio CancelStatus._scope
  PyObject* parent;           // trio CancelStatus._parent
  PyObject* cancel_called;    // trio CancelScope._cancel_called
};

const Names* names() {
  static Names n{};
  static bool ready = false;
  if (ready) return &n;
  struct Entry {
    PyObject** slot;
    const char* text;
  };
  const Entry entries[] = {
      {&n.cr_await, "cr_await"},
      {&n.cr_frame, "cr_frame"},
      {&n.gi_yieldfrom, "gi_yieldfrom"},
      {&n.gi_frame, "gi_frame"},
      {&n.ag_await, "ag_await"},
      {&n.ag_frame, "ag_frame"},
      {&n.qualname, "__qualname__"},
      {&n.get_coro, "get_coro"},
      {&n.name, "name"},
      {&n.coro, "coro"},
      {&n.next_send_fn, "_next_send_fn"},
      {&n.child_nurseries, "_child_nurseries"},
      {&n.children, "_children"},
      {&n.cancel_status, "_cancel_status"},
      {&n.scope, "_scope"},
      {&n.parent, "_parent"},
      {&n.cancel_called, "_cancel_called"},
  };
  for (const Entry& e : entries) {
    if (*e.slot) continue;
    if (!(*e.slot = PyUnicode_InternFromString(e.text))) return nullptr;
  }
  ready = true;
  return &n;
}

// Task states, numbered as anyio._task_tree's _STATES tuple.
enum class TaskRun : long { Running = 0, Ready = 1, Waiting = 2 };

// Walks await chains, making the text of each (code, line) once per snapshot
// through the Python side's `label(code, line) -> (text, location, qualname)`.
class ChainReader {
 public:
  static constexpr int kChainFields = 5;

  // codes: the recognised code objects; the first `marked` of them are
  // reported as marks, the others only as the outermost frame's tag.
  ChainReader(const Names* n, PyObject* codes, Py_ssize_t marked, PyObject* label_fn)
      : n_(n), label_fn_(label_fn), marked_(marked) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(codes); ++i) codes_.push_back(PyTuple_GET_ITEM(codes, i));
  }
  ~ChainReader() {
    for (auto& entry : labels_) Py_DECREF(entry.second);
    for (auto& entry : type_labels_) Py_DECREF(entry.second);
  }
  ChainReader(const ChainReader&) = delete;
  ChainReader& operator=(const ChainReader&) = delete;

  // The chain of `coro`: fills `out` with new references to (texts tuple,
  // coroutine qualname, location or None, innermost awaitable, marks or None)
  // and `first_tag` with the tag of the outermost frame's code (-1: none).
  // marks: ((tag, frame), ...) for the frames whose code is one of `codes`
  // (tag = its index there), outermost first.
  bool read(PyObject* coro, PyObject* out[kChainFields], Py_ssize_t* first_tag) {
    *first_tag = -1;
    std::vector<PyObject*> texts;  // borrowed from the label caches
    PyObject* first_label = nullptr;
    PyObject* location = Py_None;
    Ref marks;
    Ref obj = Ref::borrow(coro);
    for (Py_ssize_t depth = 0;; ++depth) {
      PyObject* await_name = nullptr;
      PyObject* frame_name = nullptr;
      if (PyCoro_CheckExact(obj.get())) {
        await_name = n_->cr_await, frame_name = n_->cr_frame;
      } else if (PyGen_CheckExact(obj.get())) {
        await_name = n_->gi_yieldfrom, frame_name = n_->gi_frame;
      } else if (PyAsyncGen_CheckExact(obj.get())) {
        await_name = n_->ag_await, frame_name = n_->ag_frame;
      }
      PyObject* label = nullptr;
      if (frame_name) {
        Ref frame = Ref::steal(PyObject_GetAttr(obj.get(), frame_name));
        if (!frame) return false;
        if (PyFrame_Check(frame.get())) {
          auto* f = reinterpret_cast<PyFrameObject*>(frame.get());
          Ref code = Ref::steal(reinterpret_cast<PyObject*>(PyFrame_GetCode(f)));
          if (!(label = code_label(f, code.get()))) return false;
          if (PyTuple_GET_ITEM(label, 1) != Py_None) location = PyTuple_GET_ITEM(label, 1);
          Py_ssize_t tag = tag_of(code.get());
          if (depth == 0) *first_tag = tag;
          if (tag >= 0 && tag < marked_) {
            if (!marks && !(marks = Ref::steal(PyList_New(0)))) return false;
            Ref mark = Ref::steal(Py_BuildValue("(nO)", tag, frame.get()));
            if (!mark || PyList_Append(marks.get(), mark.get()) < 0) return false;
          }
        }
      }
      if (!label && !(label = type_label(Py_TYPE(obj.get())))) return false;
      if (!first_label) first_label = label;
      texts.push_back(PyTuple_GET_ITEM(label, 0));
      if (!await_name || depth + 1 >= kMaxChain) break;
      Ref next = Ref::steal(PyObject_GetAttr(obj.get(), await_name));
      if (!next) return false;
      if (next.get() == Py_None) break;
      obj = std::move(next);
    }
    PyObject* text_tuple = PyTuple_New(static_cast<Py_ssize_t>(texts.size()));
    if (!text_tuple) return false;
    for (size_t i = 0; i < texts.size(); ++i) PyTuple_SET_ITEM(text_tuple, i, Py_NewRef(texts[i]));
    out[0] = text_tuple;
    out[1] = Py_NewRef(PyTuple_GET_ITEM(first_label, 2));
    out[2] = Py_NewRef(location);
    out[3] = obj.release();
    out[4] = marks ? PyList_AsTuple(marks.get()) : Py_NewRef(Py_None);
    if (!out[4]) {
      for (int i = 0; i < 4; ++i) Py_CLEAR(out[i]);
      return false;
    }
    return true;
  }

 private:
  // A frame's place in its code: the last instruction where the C API gives
  // it (finding the line from it scans the code's line table, once per
  // place here), else the line.
  struct Key {
    PyObject* code;
    int place;
    bool operator==(const Key& o) const { return code == o.code && place == o.place; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<const void*>()(k.code) ^ (static_cast<size_t>(k.place) * 0x9E3779B97F4A7C15ull);
    }
  };

  Py_ssize_t tag_of(PyObject* code) const {
    for (size_t i = 0; i < codes_.size(); ++i)
      if (codes_[i] == code) return static_cast<Py_ssize_t>(i);
    return -1;
  }

  // Borrowed (the cache holds it); the cache also keeps the code alive, so
  // its address cannot be reused by another code object during the snapshot.
  PyObject* code_label(PyFrameObject* frame, PyObject* code) {
#if PY_VERSION_HEX >= 0x030B0000
    Key key{code, PyFrame_GetLasti(frame)};
#else
    Key key{code, PyFrame_GetLineNumber(frame)};
#endif
    auto it = labels_.find(key);
    if (it != labels_.end()) return it->second;
    Ref lineno = Ref::steal(PyLong_FromLong(PyFrame_GetLineNumber(frame)));
    if (!lineno) return nullptr;
    PyObject* label = PyObject_CallFunctionObjArgs(label_fn_, code, lineno.get(), nullptr);
    if (!label) return nullptr;
    if (!PyTuple_CheckExact(label) || PyTuple_GET_SIZE(label) != 3) {
      Py_DECREF(label);
      return raise(PyExc_TypeError, "task tree label() must return a 3-tuple");
    }
    Py_INCREF(code);  // released with the label, at the end of the snapshot
    held_codes_.emplace_back(Ref::steal(code));
    labels_.emplace(key, label);
    return label;
  }

  // (qualname, None, qualname) for an awaitable without a frame.
  PyObject* type_label(PyTypeObject* type) {
    auto it = type_labels_.find(type);
    if (it != type_labels_.end()) return it->second;
    Ref qual = Ref::steal(PyObject_GetAttr(reinterpret_cast<PyObject*>(type), n_->qualname));
    if (!qual) return nullptr;
    PyObject* label = PyTuple_Pack(3, qual.get(), Py_None, qual.get());
    if (!label) return nullptr;
    Py_INCREF(type);
    held_codes_.emplace_back(Ref::steal(reinterpret_cast<PyObject*>(type)));
    type_labels_.emplace(type, label);
    return label;
  }

  const Names* n_;
  PyObject* label_fn_;  // borrowed from the caller's arguments
  Py_ssize_t marked_;
  std::vector<PyObject*> codes_;
  std::vector<Ref> held_codes_;
  std::unordered_map<Key, PyObject*, KeyHash> labels_;        // strong values
  std::unordered_map<PyTypeObject*, PyObject*> type_labels_;  // strong values
};

// What the core's awaitable `innermost` waits on (see waits_on below), or
// None; only asked of tasks that are not running.
PyObject* core_wait(PyObject* innermost, TaskRun state) {
  if (state == TaskRun::Running) Py_RETURN_NONE;
  return fn_waits_on(nullptr, innermost);
}

// Fills the chain fields and the wait of one task into `fields` (new
// references) starting at `at`.
bool read_task_chain(ChainReader& reader, PyObject* coro, TaskRun state, PyObject** fields,
                     Py_ssize_t* first_tag) {
  PyObject* chain[ChainReader::kChainFields];
  if (!reader.read(coro, chain, first_tag)) return false;
  PyObject* core = core_wait(chain[3], state);
  if (!core) {
    for (PyObject* p : chain) Py_DECREF(p);
    return false;
  }
  fields[0] = chain[0];  // texts
  fields[1] = chain[1];  // coroutine
  fields[2] = chain[2];  // location
  fields[3] = chain[3];  // innermost
  fields[4] = core;
  fields[5] = chain[4];  // marks
  return true;
}
constexpr int kTaskChainFields = 6;

// (scope, deadline, shield, cancel_called, deadline_reached, reason, created_at or None)
PyObject* scope_tuple(CancelScope* s) {
  PyObject* created = s->created_at < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(s->created_at);
  if (!created) return nullptr;
  return Py_BuildValue("(OdOOOON)", reinterpret_cast<PyObject*>(s), s->deadline,
                       s->shield ? Py_True : Py_False, s->cancel_called ? Py_True : Py_False,
                       s->deadline_reached ? Py_True : Py_False, s->reason ? s->reason : Py_None, created);
}

// The own scopes of `t` (innermost first) as scope tuples; `empty` when none.
PyObject* own_scopes(TaskState* t, PyObject* empty) {
  if (!t || !t->scope || t->scope == t->root || t->scope->host != t) return Py_NewRef(empty);
  Ref scopes = Ref::steal(PyList_New(0));
  if (!scopes) return nullptr;
  int depth = 0;
  for (CancelScope* s = t->scope; s && s != t->root && s->host == t && depth < kMaxScopeDepth;
       s = s->parent, ++depth) {
    Ref item = Ref::steal(scope_tuple(s));
    if (!item || PyList_Append(scopes.get(), item.get()) < 0) return nullptr;
  }
  return PyList_AsTuple(scopes.get());
}

// Fields of one asyncio task tuple (see fn_asyncio).
constexpr int kAsyncioFields = 8 + kTaskChainFields;

PyObject* asyncio_task(ChainReader& reader, PyObject* task, PyObject* loop, PyObject* current,
                       PyObject* unwrap, PyObject* empty, const Names* n) {
  Ref name = Ref::steal(call_method0(task, G.s_get_name));
  if (!name) return nullptr;
  Ref wrapper = Ref::steal(call_method0(task, n->get_coro));
  if (!wrapper) return nullptr;
  Ref waiter = Ref::steal(PyObject_GetAttr(task, G.s_fut_waiter));
  if (!waiter) return nullptr;
  TaskRun state = task == current           ? TaskRun::Running
                  : waiter.get() != Py_None ? TaskRun::Waiting
                                            : TaskRun::Ready;
  bool foreign = Py_TYPE(wrapper.get()) != TaskCoroType;
  Ref coro = Ref::steal(foreign ? Py_NewRef(wrapper.get()) : PyObject_CallOneArg(unwrap, wrapper.get()));
  if (!coro) return nullptr;
  bool failed = false;
  TaskState* t = state_of_task(task, wrapper.get(), loop, &failed);
  if (failed) return nullptr;
  PyObject* out = PyTuple_New(kAsyncioFields);
  if (!out) return nullptr;
  PyObject** f = &PyTuple_GET_ITEM(out, 0);
  f[0] = Py_NewRef(task);
  f[1] = name.release();
  f[2] = PyLong_FromLong(static_cast<long>(state));
  f[3] = Py_NewRef(foreign ? Py_True : Py_False);
  f[4] = t && t->parent_id ? PyLong_FromSize_t(t->parent_id) : Py_NewRef(Py_None);
  f[5] = own_scopes(t, empty);
  f[6] = Py_NewRef(t && t->root ? reinterpret_cast<PyObject*>(t->root) : Py_None);
  f[7] = Py_NewRef(t && t->root && t->root->host && t->root->host->task ? t->root->host->task : Py_None);
  Py_ssize_t first_tag;
  if (!f[2] || !f[4] || !f[5] || !read_task_chain(reader, coro.get(), state, f + 8, &first_tag)) {
    Py_DECREF(out);  // unset items are null: tuple dealloc skips them
    return nullptr;
  }
  return out;
}

// task_tree_asyncio(tasks, loop, current, codes, label, unwrap) -> list of
//   (task, name, state, foreign, parent_id, scopes, root, host,
//    texts, coroutine, location, innermost, core_wait, marks)
// tasks: an iterable of tasks or of weak references to tasks (asyncio's own
// registry); tasks of other loops and finished ones are left out.
// scopes: the task's own active scopes, innermost first, as
// (scope, deadline, shield, cancel_called, deadline_reached, reason, created_at).
// root/host: the scope it was spawned into and the task that entered it.
// texts/coroutine/location/innermost/marks: see ChainReader::read.
// core_wait: what the core's awaitable it is parked in waits on, or None.
PyObject* fn_asyncio(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 6 || !PyTuple_Check(args[3]))
    return raise(PyExc_TypeError, "task_tree_asyncio(tasks, loop, current, codes, label, unwrap)");
  const Names* n = names();
  if (!n) return nullptr;
  PyObject *loop = args[1], *current = args[2];
  ChainReader reader(n, args[3], PyTuple_GET_SIZE(args[3]), args[4]);
  Ref empty = Ref::steal(PyTuple_New(0));
  Ref result = Ref::steal(PyList_New(0));
  Ref iter = Ref::steal(PyObject_GetIter(args[0]));
  if (!empty || !result || !iter) return nullptr;
  while (Ref item = Ref::steal(PyIter_Next(iter.get()))) {
    PyObject* task = item.get();
    if (PyWeakref_CheckRef(task)) {
      task = PyWeakref_GetObject(task);  // borrowed; None once dead
      if (!task || task == Py_None) continue;
    }
    Ref task_ref = Ref::borrow(task);
    Ref task_loop = Ref::steal(call_method0(task, G.s_get_loop));
    if (!task_loop) return nullptr;
    if (task_loop.get() != loop) continue;
    Ref done = Ref::steal(call_method0(task, G.s_done));
    if (!done) return nullptr;
    if (done.get() == Py_True) continue;
    Ref row = Ref::steal(asyncio_task(reader, task, loop, current, args[5], empty.get(), n));
    if (!row || PyList_Append(result.get(), row.get()) < 0) return nullptr;
  }
  if (PyErr_Occurred()) return nullptr;
  return result.release();
}

// Trio: a task tuple and, recursively, its nurseries' tasks.
// Nesting deeper than this is cut with RecursionError rather than risk the C stack.
constexpr int kMaxTrioDepth = 1000;
constexpr int kTrioFields = 6 + kTaskChainFields;

struct TrioWalk {
  ChainReader& reader;
  const Names* n;
  PyObject* current;
  Py_ssize_t hide_tag;
};

// The scope objects of the cancel status chain from `status` up to `stop`
// (exclusive), innermost first.
PyObject* trio_scopes(const Names* n, PyObject* status_in, PyObject* stop) {
  Ref scopes = Ref::steal(PyList_New(0));
  if (!scopes) return nullptr;
  Ref status = Ref::borrow(status_in);
  for (int depth = 0; status.get() != Py_None && status.get() != stop && depth < kMaxScopeDepth; ++depth) {
    Ref scope = Ref::steal(PyObject_GetAttr(status.get(), n->scope));
    if (!scope || PyList_Append(scopes.get(), scope.get()) < 0) return nullptr;
    Ref parent = Ref::steal(PyObject_GetAttr(status.get(), n->parent));
    if (!parent) return nullptr;
    status = std::move(parent);
  }
  return scopes.release();
}

// (task, name, state, parent_id, scopes, nurseries, texts, coroutine,
//  location, innermost, core_wait, marks)
PyObject* trio_task(const TrioWalk& w, PyObject* task, PyObject* parent_task, PyObject* stop, int depth) {
  if (depth > kMaxTrioDepth) return raise(PyExc_RecursionError, "task tree: Trio tasks nested too deeply");
  const Names* n = w.n;
  Ref name = Ref::steal(PyObject_GetAttr(task, n->name));
  Ref coro = Ref::steal(PyObject_GetAttr(task, n->coro));
  Ref next_send = Ref::steal(PyObject_GetAttr(task, n->next_send_fn));
  Ref status = Ref::steal(PyObject_GetAttr(task, n->cancel_status));
  Ref nurseries = Ref::steal(PyObject_GetAttr(task, n->child_nurseries));
  if (!name || !coro || !next_send || !status || !nurseries) return nullptr;
  TaskRun state = task == w.current            ? TaskRun::Running
                  : next_send.get() != Py_None ? TaskRun::Ready
                                               : TaskRun::Waiting;
  Ref scopes = Ref::steal(trio_scopes(n, status.get(), stop));
  if (!scopes) return nullptr;
  PyObject* out = PyTuple_New(kTrioFields);
  if (!out) return nullptr;
  Ref guard = Ref::steal(out);
  PyObject** f = &PyTuple_GET_ITEM(out, 0);
  Py_ssize_t first_tag;
  if (!read_task_chain(w.reader, coro.get(), state, f + 6, &first_tag)) return nullptr;
  // The scope anyio's child wrapper runs each task in is the machinery's:
  // left out unless it was cancelled (TaskHandle.cancel()).
  Py_ssize_t count = PyList_GET_SIZE(scopes.get());
  if (first_tag >= 0 && first_tag == w.hide_tag && count > 0) {
    Ref called = Ref::steal(PyObject_GetAttr(PyList_GET_ITEM(scopes.get(), count - 1), n->cancel_called));
    if (!called) return nullptr;
    if (called.get() != Py_True && PyList_SetSlice(scopes.get(), count - 1, count, nullptr) < 0)
      return nullptr;
  }
  Ref groups = Ref::steal(PyList_New(0));
  if (!groups) return nullptr;
  Ref nursery_iter = Ref::steal(PyObject_GetIter(nurseries.get()));
  if (!nursery_iter) return nullptr;
  while (Ref nursery = Ref::steal(PyIter_Next(nursery_iter.get()))) {
    Ref children = Ref::steal(PyObject_GetAttr(nursery.get(), n->children));
    Ref nursery_status = Ref::steal(PyObject_GetAttr(nursery.get(), n->cancel_status));
    Ref rows = Ref::steal(PyList_New(0));
    if (!children || !nursery_status || !rows) return nullptr;
    Ref child_iter = Ref::steal(PyObject_GetIter(children.get()));
    if (!child_iter) return nullptr;
    while (Ref child = Ref::steal(PyIter_Next(child_iter.get()))) {
      Ref row = Ref::steal(trio_task(w, child.get(), task, nursery_status.get(), depth + 1));
      if (!row || PyList_Append(rows.get(), row.get()) < 0) return nullptr;
    }
    if (PyErr_Occurred()) return nullptr;
    Ref group = Ref::steal(PyTuple_Pack(2, nursery.get(), rows.get()));
    if (!group || PyList_Append(groups.get(), group.get()) < 0) return nullptr;
  }
  if (PyErr_Occurred()) return nullptr;
  f[0] = Py_NewRef(task);
  f[1] = name.release();
  f[2] = PyLong_FromLong(static_cast<long>(state));
  f[3] = parent_task ? PyLong_FromVoidPtr(parent_task) : Py_NewRef(Py_None);
  f[4] = PyList_AsTuple(scopes.get());
  f[5] = PyList_AsTuple(groups.get());
  if (!f[2] || !f[3] || !f[4] || !f[5]) return nullptr;
  return guard.release();
}

// task_tree_trio(root, current, codes, label, hide_tag) -> the root task's tuple:
//   (task, name, state, parent_id, scopes, nurseries,
//    texts, coroutine, location, innermost, core_wait, marks)
// scopes: the trio.CancelScope objects of the task's own cancel status chain
// (up to its parent nursery's), innermost first, without the scope anyio's
// child wrapper (the code at index `hide_tag` of `codes`, reported in no
// marks) runs it in.
// nurseries: ((nursery, [child task tuples]), ...).
PyObject* fn_trio(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5 || !PyTuple_Check(args[2]))
    return raise(PyExc_TypeError, "task_tree_trio(root, current, codes, label, hide_tag)");
  const Names* n = names();
  if (!n) return nullptr;
  Py_ssize_t hide_tag = PyLong_AsSsize_t(args[4]);
  if (hide_tag == -1 && PyErr_Occurred()) return nullptr;
  ChainReader reader(n, args[2], hide_tag, args[3]);
  TrioWalk walk{reader, n, args[1], hide_tag};
  return trio_task(walk, args[0], nullptr, Py_None, 0);
}

PyMethodDef module_fns[] = {
    {"task_tree_asyncio", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_asyncio)),
     METH_FASTCALL,
     "task_tree_asyncio(tasks, loop, current, codes, label, unwrap): one tuple per task, for "
     "get_task_tree()."},
    {"task_tree_trio", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn_trio)), METH_FASTCALL,
     "task_tree_trio(root, current, codes, label, hide_tag): the Trio task tree as nested tuples."},
    {"task_tree_waits_on", fn_waits_on, METH_O,
     "task_tree_waits_on(awaitable): what one of the core's awaitables waits on, or None."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_task_tree(PyObject* module) { return PyModule_AddFunctions(module, module_fns); }

}  // namespace anyio
