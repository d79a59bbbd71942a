#include "common/trio.hpp"

#include <string>
#include <unordered_map>

namespace anyio {

namespace {
PyObject* g_in_trio_run = nullptr;
}

int trio_running() {
  if (!g_in_trio_run) {
    // No Trio run can be active before Trio is imported; do not import it.
    PyObject* name = PyUnicode_FromString("trio.lowlevel");
    if (!name) return -1;
    PyObject* mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (!mod) return PyErr_Occurred() ? -1 : 0;
    g_in_trio_run = PyObject_GetAttrString(mod, "in_trio_run");
    Py_DECREF(mod);
    if (!g_in_trio_run) return -1;
  }
  PyObject* r = PyObject_CallNoArgs(g_in_trio_run);
  if (!r) return -1;
  int yes = r == Py_True;
  Py_DECREF(r);
  return yes;
}

PyObject* trio_lowlevel(const char* name) {
  static std::unordered_map<std::string, PyObject*> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  PyObject* mod = PyImport_ImportModule("trio.lowlevel");
  if (!mod) return nullptr;
  PyObject* fn = PyObject_GetAttrString(mod, name);
  Py_DECREF(mod);
  if (!fn) return nullptr;
  cache.emplace(name, fn);
  return fn;
}

}  // namespace anyio
