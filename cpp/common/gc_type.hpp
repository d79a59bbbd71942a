// The base every type of the core is built on: one declaration of the
// references an object owns (OwnedRefs), one dealloc (gc_dealloc; plain_dealloc
// for the one short-lived type that is not GC-tracked) and one builder of the
// slot table (add_gc_type). Awaitables add their protocol on top of it in
// awaitable.hpp.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <vector>

#include "common/py.hpp"

namespace anyio {

namespace detail {

template <class Member>
struct member_owner;
template <class Object, class Field>
struct member_owner<Field Object::*> {
  using type = Object;
};

// Fields may be PyObject* or a pointer to one of the core's object structs.
template <class P>
int visit_ref(P* ref, visitproc visit, void* arg) {
  return ref ? visit(reinterpret_cast<PyObject*>(ref), arg) : 0;
}

template <class P>
void clear_ref(P*& ref) {
  Py_CLEAR(ref);
}

}  // namespace detail

// The strong references an object owns, listed once as pointers to members:
//   using Refs = OwnedRefs<&Foo::a, &Foo::b>;
// Refs::traverse/clear are its tp_traverse/tp_clear when it owns nothing
// else; a type with more to do calls visit_fields/clear_fields from its own.
// clear() drops them in the listed order.
template <auto... Fields>
struct OwnedRefs {
  using Object =
      typename detail::member_owner<std::tuple_element_t<0, std::tuple<decltype(Fields)...>>>::type;

  static int visit_fields(Object* self, visitproc visit, void* arg) {
    int r = 0;
    (void)((r = detail::visit_ref(self->*Fields, visit, arg)) || ...);
    return r;
  }
  static void clear_fields(Object* self) { (detail::clear_ref(self->*Fields), ...); }

  // Heap types: every instance also owns its type.
  static int traverse(PyObject* self, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(self));
    return visit_fields(reinterpret_cast<Object*>(self), visit, arg);
  }
  static int clear(PyObject* self) {
    clear_fields(reinterpret_cast<Object*>(self));
    return 0;
  }
};

// Getter and setter of an optional reference field, which Python sees as the
// object or None (setting None or deleting empties it).
template <auto Field>
PyObject* get_optional_ref(PyObject* self, void*) {
  using Object = typename detail::member_owner<decltype(Field)>::type;
  PyObject* value = reinterpret_cast<Object*>(self)->*Field;
  return Py_NewRef(value ? value : Py_None);
}

template <auto Field>
int set_optional_ref(PyObject* self, PyObject* value, void*) {
  using Object = typename detail::member_owner<decltype(Field)>::type;
  if (value == Py_None) value = nullptr;
  Py_XINCREF(value);
  Py_XSETREF(reinterpret_cast<Object*>(self)->*Field, value);
  return 0;
}

// A GC type whose instances own no reference but their type.
struct NoRefs {
  static int traverse(PyObject* self, visitproc visit, void* arg) {
    Py_VISIT(Py_TYPE(self));
    return 0;
  }
  static int clear(PyObject*) { return 0; }
};

// The one dealloc of the core's GC types. Runs tp_finalize first if the type
// has one (a Python subclass's own dealloc has already run it), untracks (the
// collector must not see a half-cleared object), clears weak references if
// the type keeps a weaklist, runs BeforeClear (last work that still needs the references),
// the type's tp_clear, AfterClear (frees the C++ members tp_clear leaves),
// frees the memory and drops the instance's reference to its heap type.
// For an instance of a Python subclass, subtype_dealloc has already cleared
// the subclass's own parts; this clears the part defined here.
template <destructor BeforeClear = nullptr, destructor AfterClear = nullptr>
void gc_dealloc(PyObject* self) {
  PyTypeObject* tp = Py_TYPE(self);
  PyTypeObject* own = tp;
  while (own->tp_dealloc != gc_dealloc<BeforeClear, AfterClear>) own = own->tp_base;
  if (own == tp && tp->tp_finalize && PyObject_CallFinalizerFromDealloc(self) < 0) return;  // resurrected
  PyObject_GC_UnTrack(self);
  if (own->tp_weaklistoffset &&
      *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(self) + own->tp_weaklistoffset))
    PyObject_ClearWeakRefs(self);
  if constexpr (BeforeClear != nullptr) BeforeClear(self);
  own->tp_clear(self);
  if constexpr (AfterClear != nullptr) AfterClear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

namespace detail {
inline const char* row_name(const PyMethodDef& row) { return row.ml_name; }
inline const char* row_name(const PyMemberDef& row) { return row.name; }
}  // namespace detail

// One table of the rows of the null-terminated `tables` (null ones skipped),
// then `more`, then the terminator. PyType_FromSpec keeps pointers to method
// and member tables, so the new table lives as long as the process.
template <class Row>
Row* joined_table(std::initializer_list<const Row*> tables, std::initializer_list<Row> more = {}) {
  std::vector<Row> rows;
  for (const Row* row : tables)
    for (; row && detail::row_name(*row); ++row) rows.push_back(*row);
  rows.insert(rows.end(), more);
  rows.push_back(Row{});
  auto* table = new Row[rows.size()];
  std::copy(rows.begin(), rows.end(), table);
  return table;
}

// The dealloc of a type built with `gc = false`: tp_clear, free, and drop
// the instance's reference to its type.
void plain_dealloc(PyObject* self);

// What a GC type supplies; add_gc_type() builds its slot table. Optional
// fields left null are not set.
struct TypeSpec {
  const char* name;                       // "anyio._cpp.Name"
  traverseproc traverse = nullptr;        // must visit the type; null: the Refs given to add_gc_type
  inquiry clear = nullptr;                // drops every reference; the dealloc calls it
  unsigned long flags = 0;                // Py_TPFLAGS_* besides DEFAULT and HAVE_GC
  PyMethodDef* methods = nullptr;         // null-terminated
  PyMethodDef* shared_methods = nullptr;  // null-terminated, after `methods`: a table several types share
  PyGetSetDef* getset = nullptr;          // null-terminated
  PyMemberDef* members = nullptr;         // null-terminated
  reprfunc repr = nullptr;
  newfunc new_ = nullptr;
  initproc init = nullptr;
  destructor finalize = nullptr;  // tp_finalize
  const char* doc = nullptr;
  PyType_Slot* more_slots = nullptr;  // {0, nullptr}-terminated
  destructor dealloc = gc_dealloc<>;  // gc_dealloc<...> with the type's extra steps
  // false: not GC-tracked (a short-lived object no cycle can pass through);
  // traverse is not used and the dealloc is plain_dealloc.
  bool gc = true;
};

// What the struct behind a type says about it: its size, and where its weak
// references are kept (a field named `weakreflist`; 0 for none).
struct ObjectLayout {
  Py_ssize_t basicsize;
  Py_ssize_t weaklist;
};

template <class T>
constexpr ObjectLayout layout_of() {
  if constexpr (requires { &T::weakreflist; })
    return {sizeof(T), offsetof(T, weakreflist)};
  else
    return {sizeof(T), 0};
}

// The traverse/clear a spec gives, or else Refs's.
template <class Refs>
void default_refs(traverseproc* traverse, inquiry* clear) {
  if constexpr (!std::is_void_v<Refs>) {
    if (!*traverse) *traverse = Refs::traverse;
    if (!*clear) *clear = Refs::clear;
  }
}

PyTypeObject* add_gc_type(PyObject* module, TypeSpec spec, ObjectLayout layout);

// Creates the type of the struct T and adds it to the module under its short
// name; Refs (an OwnedRefs) gives the traverse/clear the spec leaves null.
// Returns the type (borrowed: the module owns it).
template <class T, class Refs = void>
PyTypeObject* add_gc_type(PyObject* module, TypeSpec spec) {
  default_refs<Refs>(&spec.traverse, &spec.clear);
  return add_gc_type(module, spec, layout_of<T>());
}

}  // namespace anyio
