// Glue shared by the C awaitables (checkpoints, the task wrapper, primitives'
// operations, memory stream operations): each implements am_send, and gets
// tp_iternext, the `send` method and the `throw` plumbing from here.
#pragma once

#include <cstring>

#include "common/py.hpp"

namespace anyio {

using SendFunc = PySendResult (*)(PyObject*, PyObject*, PyObject**);

// Raises StopIteration carrying `value` (a new reference, consumed). None
// raises a bare StopIteration; tuples and exceptions are wrapped correctly.
void set_stop_iteration(PyObject* value);

// Turns the outcome of an am_send call into what a Python-level call returns:
// the yielded value, or nullptr with StopIteration/the error set.
inline PyObject* send_result_to_python(PySendResult r, PyObject* out) {
  if (r == PYGEN_NEXT) return out;
  if (r == PYGEN_RETURN) set_stop_iteration(out);
  return nullptr;
}

// Turns the result of calling a `throw`/`close` method into a send result,
// unpacking StopIteration into PYGEN_RETURN with its value.
PySendResult send_result_of_call(PyObject* res, PyObject** out);

// tp_iternext on top of am_send. A None return ends iteration with no
// exception set, as generators do.
template <SendFunc Send>
PyObject* iternext_via_send(PyObject* self) {
  PyObject* out = nullptr;
  PySendResult r = Send(self, Py_None, &out);
  if (r == PYGEN_RETURN && out == Py_None) {
    Py_DECREF(out);
    return nullptr;
  }
  return send_result_to_python(r, out);
}

// The `send(value)` method on top of am_send.
template <SendFunc Send>
PyObject* send_method_via_send(PyObject* self, PyObject* arg) {
  PyObject* out = nullptr;
  PySendResult r = Send(self, arg, &out);
  return send_result_to_python(r, out);
}

// Checks the arguments of a `throw(typ[, val[, tb]])` call the way generators
// do, before the awaitable changes any state: between one and three
// arguments, `typ` an exception class or instance (an instance with no
// separate value), `tb` a traceback or None. Returns -1 with TypeError set.
// Every `throw` method calls it first, so a bad call leaves the awaitable
// suspended where it was, as it leaves a generator.
int check_throw_args(PyObject* const* args, Py_ssize_t nargs);

// Raises the exception a `throw(typ[, val[, tb]])` call asks for; the
// arguments have passed check_throw_args().
void set_thrown(PyObject* const* args, Py_ssize_t nargs);

// Forwards a throw(...) call to `inner` and returns the send result.
PySendResult forward_throw(PyObject* inner, PyObject* const* args, Py_ssize_t nargs, PyObject** out);

// An awaitable that has handed the rest of its work to another one (Trio's
// checkpoint coroutines, a Python continuation) forwards send/throw/close to
// `*inner`; the reference is dropped once the inner awaitable has finished.
PySendResult inner_send(PyObject** inner, PyObject* arg, PyObject** out);
PySendResult inner_throw(PyObject** inner, PyObject* const* args, Py_ssize_t nargs, PyObject** out);
PyObject* inner_close(PyObject** inner);  // inner.close()'s result

// __await__/__iter__ of an awaitable that is its own iterator.
inline PyObject* await_self(PyObject* self) {
  Py_INCREF(self);
  return self;
}

// --- The awaitable base -------------------------------------------------------------

// What a C awaitable type supplies; add_awaitable_type() builds the rest of
// its type. Every such type is a GC type, is its own iterator, and cannot be
// instantiated from Python.
struct AwaitableSpec {
  const char* name;  // "anyio._cpp.Name"
  Py_ssize_t basicsize;
  SendFunc send;                   // am_send: the one stepping function
  _PyCFunctionFast throw_;         // throw(typ[, val[, tb]])
  PyCFunction close;               // close(), METH_NOARGS
  traverseproc traverse;           // must visit the type (heap types own it)
  inquiry clear;                   // drops every reference; the dealloc calls it
  PyMethodDef* methods = nullptr;  // more methods, null-terminated
  PyGetSetDef* getset = nullptr;   // null-terminated
  PyMemberDef* members = nullptr;  // null-terminated
  destructor dealloc = nullptr;    // only for a type that must do more than untrack/clear/free
  unsigned long extra_flags = 0;   // Py_TPFLAGS_* besides DEFAULT, HAVE_GC, DISALLOW_INSTANTIATION
};

// Creates the type (am_send, am_await, tp_iter, tp_iternext, the send/throw/
// close methods, the GC slots and the dealloc) and adds it to the module
// under its short name. Returns the type (borrowed: the module owns it).
PyTypeObject* add_awaitable_type(PyObject* module, const AwaitableSpec& spec);

// A new, untracked instance with every field after the header zeroed; the
// caller fills it in and then calls PyObject_GC_Track.
template <class T>
T* new_awaitable(PyTypeObject* type) {
  T* self = PyObject_GC_New(T, type);
  if (self) std::memset(reinterpret_cast<char*>(self) + sizeof(PyObject), 0, sizeof(T) - sizeof(PyObject));
  return self;
}

}  // namespace anyio
