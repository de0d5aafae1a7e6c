// Python bindings for XXH64: `_C.xxh64` (one buffer) and `_C.xxh64_batch` (many texts, threaded).
//
// xxh64_batch collects views of every item while holding the GIL and owning a reference to each item
// (a private tuple copy of the input), then releases the GIL and hashes on std::thread workers. Items
// are str or bytes, both immutable, so the views stay valid while the GIL is released even if the
// caller mutates its list from another thread. A non-ASCII str is UTF-8 encoded by the worker into a
// per-thread buffer (in parallel, and without caching a UTF-8 copy inside every str object).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "dedup/parallel.h"
#include "dedup/py_args.h"
#include "dedup/utf8.h"
#include "dedup/xxh64.h"

namespace py = pybind11;

namespace bmf {
namespace dedup {
namespace {

// Items per work unit handed to a worker; small enough to balance skewed lengths.
constexpr std::size_t kBlockItems = 256;
// Below this many bytes (code units) in total the batch is hashed on the calling thread only.
constexpr std::size_t kMinBytesForThreads = std::size_t{1} << 18;

// A borrowed view of one item: raw bytes (`kind == 0`: bytes, or an ASCII str whose code units
// already are UTF-8) or the code units of a non-ASCII str (`kind` 1/2/4) to encode on the fly.
struct Item {
  const void* data;
  std::size_t length;  // bytes for kind 0, code units otherwise
  int kind;
};

std::string item_name(std::size_t index) { return "texts[" + std::to_string(index) + "]"; }

// Needs the GIL. Does not materialise (and cache) a UTF-8 copy inside the str object.
// `index` names the item in errors (kNoIndex: the scalar `data` argument).
constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);

Item item_of(py::handle obj, std::size_t index) {
  PyObject* o = obj.ptr();
  if (PyUnicode_Check(o)) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(o) != 0) throw py::error_already_set();
#endif
    const std::size_t length = static_cast<std::size_t>(PyUnicode_GET_LENGTH(o));
    if (PyUnicode_IS_ASCII(o)) return {PyUnicode_DATA(o), length, 0};
    return {PyUnicode_DATA(o), length, static_cast<int>(PyUnicode_KIND(o))};
  }
  if (PyBytes_Check(o)) {
    return {PyBytes_AS_STRING(o), static_cast<std::size_t>(PyBytes_GET_SIZE(o)), 0};
  }
  const std::string what = index == kNoIndex ? std::string("data") : item_name(index);
  throw py::type_error(what + " must be str or bytes, got " + type_name(obj));
}

// GIL-free. Returns false (and the code-unit position) for a str holding a lone surrogate.
bool hash_item(const Item& item, std::uint64_t seed, std::vector<unsigned char>& scratch, std::uint64_t* out,
               std::size_t* bad_position) {
  if (item.kind == 0) {
    *out = xxh64(item.data, item.length, seed);
    return true;
  }
  std::size_t size = 0;
  if (!encode_utf8(item.data, item.length, item.kind, scratch, &size, bad_position)) return false;
  *out = xxh64(scratch.data(), size, seed);
  return true;
}

[[noreturn]] void throw_unencodable(const std::string& what, std::size_t position) {
  throw py::value_error(what + " is a str that cannot be encoded as UTF-8 (lone surrogate at character " +
                        std::to_string(position) + ")");
}

py::int_ xxh64_py(py::object data, py::object seed_obj) {
  const std::uint64_t seed = parse_seed(seed_obj);
  if (PyUnicode_Check(data.ptr()) || PyBytes_Check(data.ptr())) {
    const Item item = item_of(data, kNoIndex);
    std::vector<unsigned char> scratch;
    std::uint64_t h = 0;
    std::size_t bad = 0;
    if (!hash_item(item, seed, scratch, &h, &bad)) throw_unencodable("data", bad);
    return py::int_(h);
  }
  if (PyObject_CheckBuffer(data.ptr())) {  // bytearray, memoryview, contiguous numpy arrays
    Py_buffer buf;
    if (PyObject_GetBuffer(data.ptr(), &buf, PyBUF_C_CONTIGUOUS) != 0) {
      py::raise_from(PyExc_TypeError, "data must be str, bytes or a C-contiguous buffer");
      throw py::error_already_set();
    }
    const std::uint64_t h = xxh64(buf.buf, static_cast<std::size_t>(buf.len), seed);
    PyBuffer_Release(&buf);
    return py::int_(h);
  }
  throw py::type_error("data must be str or bytes, got " + type_name(data));
}

py::array_t<std::uint64_t> xxh64_batch_py(py::object texts, py::object seed_obj, long long num_threads) {
  const std::uint64_t seed = parse_seed(seed_obj);
  const py::tuple owned = owned_texts(texts, "str/bytes");
  const std::size_t n = owned.size();

  std::vector<Item> items;
  items.reserve(n);
  std::size_t total_units = 0;
  for (std::size_t i = 0; i < n; ++i) {
    items.push_back(item_of(owned[i], i));
    total_units += items.back().length;
  }
  const std::size_t threads = resolve_threads(num_threads, total_units, kMinBytesForThreads);

  py::array_t<std::uint64_t> out(static_cast<py::ssize_t>(n));
  std::uint64_t* const result = out.mutable_data();
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::atomic<std::size_t> first_bad{kNone};  // smallest index of an unencodable str
  {
    py::gil_scoped_release no_gil;
    // per-thread state: a UTF-8 buffer reused across items
    parallel_blocks<std::vector<unsigned char>>(
        n, kBlockItems, threads, [&](std::size_t begin, std::size_t end, std::vector<unsigned char>& scratch) {
          for (std::size_t i = begin; i < end; ++i) {
            std::size_t bad_position = 0;
            if (!hash_item(items[i], seed, scratch, &result[i], &bad_position)) {
              std::size_t seen = first_bad.load();
              while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {}
            }
          }
        });
  }
  if (first_bad.load() != kNone) {
    const std::size_t i = first_bad.load();
    std::vector<unsigned char> scratch;
    std::uint64_t unused = 0;
    std::size_t position = 0;
    hash_item(items[i], seed, scratch, &unused, &position);  // re-run to recover the position
    throw_unencodable(item_name(i), position);
  }
  return out;
}

}  // namespace

void dedup_init(py::module_& m) {
  m.def("xxh64", &xxh64_py, py::arg("data"), py::arg("seed") = 0,
        "XXH64 of `data` (bytes, or str hashed as UTF-8) with a 64-bit `seed`; returns an int in [0, 2**64).");
  m.def("xxh64_batch", &xxh64_batch_py, py::arg("texts"), py::arg("seed") = 0, py::arg("num_threads") = 0,
        "XXH64 of every item of `texts` (list of str/bytes; str hashed as UTF-8).\n\n"
        "Returns a numpy uint64 array of shape (len(texts),). Hashing runs with the GIL released on\n"
        "`num_threads` std::threads (0 = hardware concurrency, capped at 32; small batches use one thread).\n"
        "The result does not depend on `num_threads`. Raises TypeError/ValueError naming the bad index.");
}

}  // namespace dedup
}  // namespace bmf
