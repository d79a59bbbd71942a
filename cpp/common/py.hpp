// Small RAII and lookup helpers shared by every component of the core.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <utility>

// Thread-locals of the core are a few pointers read on every step of every
// task. The default model for a dlopen()ed module goes through
// __tls_get_addr on each read; initial-exec is one %fs-relative load, and the
// few dozen bytes fit in the static TLS space glibc reserves for such modules.
#if defined(__GNUC__) && defined(__linux__)
#define ANYIO_TLS thread_local __attribute__((tls_model("initial-exec")))
#else
#define ANYIO_TLS thread_local
#endif

namespace anyio {

// PyFloat_AsDouble() on an int goes through int.__float__ and a temporary
// float object; timeouts are most often written as ints.
inline double as_double(PyObject* o) {
  if (PyFloat_CheckExact(o)) return PyFloat_AS_DOUBLE(o);
  if (PyLong_CheckExact(o)) return PyLong_AsDouble(o);
  return PyFloat_AsDouble(o);
}

// An owning reference. Hot paths use raw PyObject* with explicit INCREF/DECREF
// where that is clearer; Ref is for code with several exits.
class Ref {
 public:
  Ref() = default;
  static Ref steal(PyObject* p) { return Ref(p); }
  static Ref borrow(PyObject* p) {
    Py_XINCREF(p);
    return Ref(p);
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    if (this != &o) {
      Py_XDECREF(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~Ref() { Py_XDECREF(p_); }

  PyObject* get() const { return p_; }
  PyObject* release() { return std::exchange(p_, nullptr); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  explicit Ref(PyObject* p) : p_(p) {}
  PyObject* p_ = nullptr;
};

// Objects looked up once at module initialisation and kept for the life of the
// interpreter (the module holds them). Interned names make attribute lookups
// and method calls skip string creation.
struct Globals {
  // asyncio
  PyObject* get_running_loop = nullptr;  // asyncio.events._get_running_loop (C)
  PyObject* current_task = nullptr;      // asyncio.current_task (C)
  PyObject* CancelledError = nullptr;    // asyncio.CancelledError
  PyObject* InvalidStateError = nullptr;
  PyObject* Future = nullptr;           // asyncio.Future (C type)
  PyObject* base_event_loop = nullptr;  // asyncio.BaseEventLoop
  PyObject* TimeoutError = nullptr;     // builtins.TimeoutError
  // interned names
  PyObject* s_cancel = nullptr;
  PyObject* s_done = nullptr;
  PyObject* s_set_result = nullptr;
  PyObject* s_set_exception = nullptr;
  PyObject* s_result = nullptr;
  PyObject* s_create_future = nullptr;
  PyObject* s_create_task = nullptr;
  PyObject* s_add_done_callback = nullptr;
  PyObject* s_remove_done_callback = nullptr;
  PyObject* s_call_soon = nullptr;
  PyObject* s_call_at = nullptr;
  PyObject* s_time = nullptr;
  PyObject* s_throw = nullptr;
  PyObject* s_send = nullptr;
  PyObject* s_close = nullptr;
  PyObject* s_uncancel = nullptr;
  PyObject* s_cancelling = nullptr;
  PyObject* s_fut_waiter = nullptr;
  PyObject* s_get_name = nullptr;
  PyObject* s_name = nullptr;
  PyObject* s_asyncio_future_blocking = nullptr;
  PyObject* s_cancelled = nullptr;
  PyObject* s_exception = nullptr;
  PyObject* s_get_loop = nullptr;
  PyObject* s_must_cancel = nullptr;
  // Methods of anyio._taskgroup.TaskGroup the C base hands work to.
  PyObject* s_qualname = nullptr;
  PyObject* s_module = nullptr;
  PyObject* s_asyncio_exit = nullptr;
  PyObject* s_trio_aenter = nullptr;
  PyObject* s_trio_exit = nullptr;
  PyObject* s_trio_start_soon = nullptr;
};

extern Globals G;

// Raises `exc_type(message)` and returns nullptr, for `return raise(...)`.
inline PyObject* raise(PyObject* exc_type, const char* message) {
  PyErr_SetString(exc_type, message);
  return nullptr;
}

// Calls obj.name() with no arguments through the vectorcall method protocol.
inline PyObject* call_method0(PyObject* obj, PyObject* name) {
  PyObject* args[] = {obj};
  return PyObject_VectorcallMethod(name, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

inline PyObject* call_method1(PyObject* obj, PyObject* name, PyObject* arg) {
  PyObject* args[] = {obj, arg};
  return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

inline PyObject* call_method2(PyObject* obj, PyObject* name, PyObject* a, PyObject* b) {
  PyObject* args[] = {obj, a, b};
  return PyObject_VectorcallMethod(name, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

// Adds a type built from a spec to the module under its short name.
PyTypeObject* add_type(PyObject* module, PyType_Spec* spec, PyObject* bases = nullptr);

}  // namespace anyio
