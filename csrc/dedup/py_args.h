// Argument parsing shared by the dedup bindings: Python values checked and converted, with messages that name the
// argument and the expected range.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

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
    throw pybind11::value_error("seed must be an int in [0, 2**64), got " + pybind11::repr(seed).cast<std::string>());
  }
  return static_cast<std::uint64_t>(value);
}

// Worker threads for `num_threads`: an explicit count (capped at 256), or 0 = the hardware threads (capped at 32),
// but only the calling thread when the batch holds fewer than `min_units_for_threads` characters / bytes.
inline std::size_t resolve_threads(long long requested, std::size_t total_units, std::size_t min_units_for_threads) {
  constexpr std::size_t kMaxThreads = 256, kMaxAutoThreads = 32;
  if (requested < 0) {
    throw pybind11::value_error("num_threads must be >= 0 (0 = use all hardware threads), got " +
                                std::to_string(requested));
  }
  if (requested > 0) return std::min(static_cast<std::size_t>(requested), kMaxThreads);
  if (total_units < min_units_for_threads) return 1;
  return std::min<std::size_t>(std::max(1u, std::thread::hardware_concurrency()), kMaxAutoThreads);
}

// `texts` as a tuple that owns a reference to every item (so they stay alive while the GIL is released); a single
// str/bytes or a non-sequence is a TypeError naming what was expected (`what`: "str" or "str/bytes").
inline pybind11::tuple owned_texts(pybind11::handle texts, const char* what) {
  if (PyUnicode_Check(texts.ptr()) || PyBytes_Check(texts.ptr())) {
    throw pybind11::type_error(std::string("texts must be a list of ") + what + ", got a single " + type_name(texts) +
                               " (wrap it in a list)");
  }
  PyObject* tuple = PySequence_Tuple(texts.ptr());
  if (tuple == nullptr) {
    PyErr_Clear();
    throw pybind11::type_error(std::string("texts must be a sequence of ") + what + ", got " + type_name(texts));
  }
  return pybind11::reinterpret_steal<pybind11::tuple>(tuple);
}

}  // namespace dedup
}  // namespace bmf
