// Argument parsing shared by the dedup bindings: Python values checked and converted, with messages that name the
// argument and the expected range.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace bmf {
namespace dedup {

inline std::string type_name(pybind11::handle obj) { return Py_TYPE(obj.ptr())->tp_name; }

// An int in [0, 2**64) (bool is rejected: `seed=True` is almost surely a mistake).
inline std::uint64_t parse_seed(pybind11::handle seed) {
  if (!PyLong_Check(seed.ptr()) || PyBool_Check(seed.ptr())) {
    throw pybind11::type_error("seed must be an int in [0, 2**64), got " + type_name(seed));
  }
  const unsigned long long value = PyLong_AsUnsignedLongLong(seed.ptr());
  if (value == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw pybind11::value_error("seed must be an int in [0, 2**64), got " +
                                pybind11::repr(seed).cast<std::string>());
  }
  return static_cast<std::uint64_t>(value);
}

}  // namespace dedup
}  // namespace bmf
