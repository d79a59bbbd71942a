#include "common/gc_type.hpp"

#include <vector>

namespace anyio {

void plain_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  tp->tp_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

PyTypeObject* add_gc_type(PyObject* module, TypeSpec spec, ObjectLayout layout) {
  if ((spec.gc && !spec.traverse) || !spec.clear) {
    PyErr_Format(PyExc_SystemError, "%s: no traverse/clear", spec.name);
    return nullptr;
  }
  std::vector<PyType_Slot> slots = {
      {Py_tp_dealloc, reinterpret_cast<void*>(spec.gc ? spec.dealloc : plain_dealloc)},
      {Py_tp_clear, reinterpret_cast<void*>(spec.clear)},
  };
  auto optional = [&slots](int slot, void* value) {
    if (value) slots.push_back({slot, value});
  };
  if (spec.gc) slots.push_back({Py_tp_traverse, reinterpret_cast<void*>(spec.traverse)});
  optional(Py_tp_methods, spec.shared_methods ? joined_table<PyMethodDef>({spec.methods, spec.shared_methods})
                                              : spec.methods);
  optional(Py_tp_getset, spec.getset);
  optional(Py_tp_members,
           layout.weaklist ? joined_table<PyMemberDef>({spec.members}, {{"__weaklistoffset__", T_PYSSIZET,
                                                                         layout.weaklist, READONLY, nullptr}})
                           : spec.members);
  optional(Py_tp_repr, reinterpret_cast<void*>(spec.repr));
  optional(Py_tp_new, reinterpret_cast<void*>(spec.new_));
  optional(Py_tp_init, reinterpret_cast<void*>(spec.init));
  optional(Py_tp_finalize, reinterpret_cast<void*>(spec.finalize));
  optional(Py_tp_doc, const_cast<char*>(spec.doc));
  for (PyType_Slot* s = spec.more_slots; s && s->slot; ++s) slots.push_back(*s);
  slots.push_back({0, nullptr});

  PyType_Spec type_spec = {
      spec.name,
      static_cast<int>(layout.basicsize),
      0,
      static_cast<unsigned int>(Py_TPFLAGS_DEFAULT | (spec.gc ? Py_TPFLAGS_HAVE_GC : 0) | spec.flags),
      slots.data(),
  };
  return add_type(module, &type_spec);
}

}  // namespace anyio
