#include <cstring>

#include "common/py.hpp"

namespace anyio {

Globals G;

PyTypeObject* add_type(PyObject* module, PyType_Spec* spec, PyObject* bases) {
  PyObject* type = PyType_FromModuleAndSpec(module, spec, bases);
  if (!type) return nullptr;
  const char* dot = std::strrchr(spec->name, '.');
  const char* short_name = dot ? dot + 1 : spec->name;
  if (PyModule_AddObjectRef(module, short_name, type) < 0) {
    Py_DECREF(type);
    return nullptr;
  }
  // The module keeps the type alive; callers hold a borrowed pointer.
  Py_DECREF(type);
  return reinterpret_cast<PyTypeObject*>(type);
}

}  // namespace anyio
