// Python bindings for MinHash near-duplicate detection (see minhash.h):
//   _C.MinHashIndexCore   the incremental LSH index (add / save / load), wrapped by
//                         bigmodel_fast.data.dedup.MinHashIndex
//   _C.minhash_signatures signatures of a batch of texts (numpy uint32 (N, num_perm))
//   _C.minhash_union_find one-shot union-find clustering (dedup(clustering="union_find"))
//   _C.minhash_words / _C.minhash_shingles   the normalisation, for tests and debugging
//   _C.minhash_isa        which SIMD implementation computes signatures
//   _C.MINHASH_LIMITS / _C.MINHASH_DEFAULTS   the parameter limits and defaults (dicts), read by Python
//
// Like xxh64_batch, a batch is collected (and type-checked) while holding the GIL, with a private
// tuple owning every item; the work then runs with the GIL released on std::thread workers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "dedup/minhash.h"
#include "dedup/parallel.h"
#include "dedup/py_args.h"

namespace py = pybind11;

namespace bmf {
namespace dedup {
namespace {

// Below this many code units in total, num_threads=0 uses the calling thread only.
constexpr std::size_t kMinUnitsForThreads = std::size_t{1} << 15;
// Longest text accepted (its normalised UTF-8 must fit 32-bit offsets).
constexpr std::size_t kMaxTextUnits = 800000000;

struct Batch {
  py::tuple owned;  // keeps every str alive while the GIL is released
  std::vector<TextView> views;
  std::size_t total_units = 0;
};

constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);

// `index` names the item in errors ("texts[index]"; kNoIndex: the scalar argument "text").
TextView view_of(PyObject* o, std::size_t index) {
  auto what = [&]() { return index == kNoIndex ? std::string("text") : "texts[" + std::to_string(index) + "]"; };
  if (!PyUnicode_Check(o)) throw py::type_error(what() + " must be str, got " + Py_TYPE(o)->tp_name);
#if PY_VERSION_HEX < 0x030C0000
  if (PyUnicode_READY(o) != 0) throw py::error_already_set();
#endif
  const std::size_t length = static_cast<std::size_t>(PyUnicode_GET_LENGTH(o));
  if (length > kMaxTextUnits) {
    throw py::value_error(what() + " is too long (" + std::to_string(length) + " characters; at most " +
                          std::to_string(kMaxTextUnits) + ")");
  }
  return TextView{PyUnicode_DATA(o), length, static_cast<int>(PyUnicode_KIND(o))};
}

Batch collect(py::handle texts) {
  Batch batch;
  batch.owned = owned_texts(texts, "str");
  PyObject* tuple_ptr = batch.owned.ptr();
  const std::size_t n = static_cast<std::size_t>(PyTuple_GET_SIZE(tuple_ptr));
  batch.views.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    batch.views[i] = view_of(PyTuple_GET_ITEM(tuple_ptr, static_cast<Py_ssize_t>(i)), i);
    batch.total_units += batch.views[i].length;
  }
  return batch;
}

std::size_t resolve_threads(long long requested, std::size_t total_units) {
  return dedup::resolve_threads(requested, total_units, kMinUnitsForThreads);
}

Isa parse_isa(const std::string& name) {
  Isa isa;
  if (name == "auto") {
    isa = Isa::kAuto;
  } else if (name == "scalar") {
    isa = Isa::kScalar;
  } else if (name == "avx2") {
    isa = Isa::kAvx2;
  } else if (name == "avx512") {
    isa = Isa::kAvx512;
  } else {
    throw py::value_error("isa must be one of 'auto', 'scalar', 'avx2', 'avx512', got '" + name + "'");
  }
  if (!isa_supported(isa)) throw py::value_error("isa '" + name + "' is not supported by this CPU");
  return isa == Isa::kAuto ? best_isa() : isa;
}

void check_params(double threshold, long long ngram, long long num_perm, long long bands, long long max_reps,
                  const char* reps_name = "max_reps") {
  if (!(threshold > 0.0 && threshold <= 1.0)) {  // repr keeps the exact value in the message
    throw py::value_error("threshold must be in (0, 1], got " + py::repr(py::float_(threshold)).cast<std::string>());
  }
  const std::string error = minhash_param_error(threshold, ngram, num_perm, bands, max_reps, reps_name);
  if (!error.empty()) throw py::value_error(error);
}

// ngram / num_perm alone (the other parameters at valid values)
void check_ngram(long long ngram) { check_params(1.0, ngram, 1, 1, 1); }
void check_num_perm(long long num_perm) { check_params(1.0, 1, num_perm, 1, 1); }

// Collects `texts`, then runs `cluster(views, n, threads, isa, clusters_out)` with the GIL released; returns the
// cluster ids (int64 (N,)) and the stats `cluster` returned.
template <typename Cluster>
auto cluster_batch(py::handle texts, long long num_threads, const std::string& isa_name, Cluster&& cluster) {
  const Isa isa = parse_isa(isa_name);
  Batch batch = collect(texts);
  const std::size_t threads = resolve_threads(num_threads, batch.total_units);
  const std::size_t n = batch.views.size();
  py::array_t<std::int64_t> clusters(static_cast<py::ssize_t>(n));
  std::int64_t* out = clusters.mutable_data();
  decltype(cluster(batch.views.data(), n, threads, isa, out)) stats;
  {
    py::gil_scoped_release no_gil;
    stats = cluster(batch.views.data(), n, threads, isa, out);
  }
  return std::make_pair(std::move(clusters), stats);
}

// A dict of named counters (the stats of one call).
py::dict counters(std::initializer_list<std::pair<const char*, std::uint64_t>> items) {
  py::dict d;
  for (const auto& item : items) d[item.first] = item.second;
  return d;
}

py::dict stats_dict(const AddStats& s) {
  return counters({{"candidate_pairs", s.candidate_pairs},
                   {"verified_pairs", s.verified_pairs},
                   {"empty_documents", s.empty_documents},
                   {"offset", s.offset},
                   {"total_documents", s.total_docs},
                   {"total_kept", s.total_clusters}});
}

py::dict stats_dict(const UnionFindStats& s) {
  return counters({{"candidate_pairs", s.candidate_pairs},
                   {"verified_pairs", s.verified_pairs},
                   {"components_merged", s.components_merged},
                   {"empty_documents", s.empty_documents},
                   {"clusters", s.clusters}});
}

py::tuple index_add(MinHashIndex& index, py::object texts, long long num_threads, const std::string& isa_name) {
  auto result = cluster_batch(texts, num_threads, isa_name,
                              [&](const TextView* views, std::size_t n, std::size_t threads, Isa isa,
                                  std::int64_t* out) { return index.add(views, n, threads, isa, out); });
  return py::make_tuple(result.first, stats_dict(result.second));
}

py::tuple union_find_py(py::object texts, double threshold, long long ngram, long long num_perm, long long bands,
                        py::object seed_obj, long long max_members, long long num_threads,
                        const std::string& isa_name) {
  check_params(threshold, ngram, num_perm, bands, max_members, "max_members");
  const std::uint64_t seed = parse_seed(seed_obj);
  auto result =
      cluster_batch(texts, num_threads, isa_name,
                    [&](const TextView* views, std::size_t n, std::size_t threads, Isa isa, std::int64_t* out) {
                      return cluster_union_find(views, n, threshold, static_cast<std::uint32_t>(ngram),
                                                static_cast<std::uint32_t>(num_perm), static_cast<std::uint32_t>(bands),
                                                seed, static_cast<std::uint32_t>(max_members), threads, isa, out);
                    });
  return py::make_tuple(result.first, stats_dict(result.second));
}

void index_save(const MinHashIndex& index, const std::string& path) {
  try {
    py::gil_scoped_release no_gil;
    index.save(path);
  } catch (const std::system_error& e) {
    PyErr_SetString(PyExc_OSError, e.what());
    throw py::error_already_set();
  }
}

std::unique_ptr<MinHashIndex> index_load(const std::string& path) {
  try {
    py::gil_scoped_release no_gil;
    return MinHashIndex::load(path);
  } catch (const IndexFileError& e) {
    throw py::value_error(e.what());
  }
}

py::array_t<std::uint32_t> signatures_py(py::object texts, long long num_perm, long long ngram, py::object seed_obj,
                                         long long num_threads, const std::string& isa_name) {
  check_num_perm(num_perm);
  check_ngram(ngram);
  const std::uint64_t seed = parse_seed(seed_obj);
  const Isa isa = parse_isa(isa_name);
  Batch batch = collect(texts);
  const std::size_t n = batch.views.size();
  const std::size_t threads = resolve_threads(num_threads, batch.total_units);
  py::array_t<std::uint32_t> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(num_perm)});
  std::uint32_t* result = out.mutable_data();
  {
    py::gil_scoped_release no_gil;
    const HashFamily family(static_cast<std::size_t>(num_perm), seed);
    parallel_blocks<SignatureScratch>(
        n, 32, threads, [&](std::size_t begin, std::size_t end, SignatureScratch& scratch) {
          for (std::size_t i = begin; i < end; ++i) {
            compute_signature(batch.views[i], static_cast<std::size_t>(ngram), family, isa, scratch,
                              result + i * static_cast<std::size_t>(num_perm));
          }
        });
  }
  return out;
}

std::vector<std::string> words_of(py::object text, const std::string& isa_name) {
  const Isa isa = parse_isa(isa_name);
  const TextView view = view_of(text.ptr(), kNoIndex);
  NormalizedText norm;
  normalize_text(view, norm, isa);
  std::vector<std::string> out;
  out.reserve(norm.words);
  const char* bytes = reinterpret_cast<const char*>(norm.buf.data());
  for (std::size_t k = 0; k < norm.words; ++k) out.emplace_back(bytes + norm.starts[k], norm.ends[k] - norm.starts[k]);
  return out;
}

py::list shingles_py(py::object text, long long ngram) {
  check_ngram(ngram);
  const std::vector<std::string> words = words_of(text, "auto");
  py::list out;
  if (words.empty()) return out;
  const std::size_t n = std::min(static_cast<std::size_t>(ngram), words.size());
  for (std::size_t k = 0; k + n <= words.size(); ++k) {
    std::string shingle = words[k];
    for (std::size_t j = 1; j < n; ++j) shingle += " " + words[k + j];
    out.append(py::str(shingle));
  }
  return out;
}

}  // namespace

void minhash_init(py::module_& m) {
  using D = MinHashDefaults;
  py::dict limits;  // the C++ limits, read by bigmodel_fast.data.minhash_config (never retyped in Python)
  limits["max_num_perm"] = kMaxNumPerm;
  limits["max_ngram"] = kMaxNgram;
  limits["max_members"] = kMaxReps;
  limits["max_text_chars"] = kMaxTextUnits;
  m.attr("MINHASH_LIMITS") = limits;
  py::dict defaults;  // the keyword defaults below; tests check MinHashConfig's equal them
  defaults["threshold"] = D::kThreshold;
  defaults["ngram"] = D::kNgram;
  defaults["num_perm"] = D::kNumPerm;
  defaults["bands"] = D::kBands;
  defaults["seed"] = D::kSeed;
  defaults["max_members"] = D::kMaxMembers;
  m.attr("MINHASH_DEFAULTS") = defaults;

  py::class_<MinHashIndex>(m, "MinHashIndexCore",
                           "Incremental MinHash-LSH index (native core of bigmodel_fast.data.dedup.MinHashIndex).")
      .def(py::init([](double threshold, long long ngram, long long num_perm, long long bands, py::object seed,
                       long long max_reps) {
             check_params(threshold, ngram, num_perm, bands, max_reps);
             return std::make_unique<MinHashIndex>(
                 threshold, static_cast<std::uint32_t>(ngram), static_cast<std::uint32_t>(num_perm),
                 static_cast<std::uint32_t>(bands), parse_seed(seed), static_cast<std::uint32_t>(max_reps));
           }),
           py::arg("threshold") = D::kThreshold, py::arg("ngram") = D::kNgram, py::arg("num_perm") = D::kNumPerm,
           py::arg("bands") = D::kBands, py::arg("seed") = D::kSeed, py::arg("max_reps") = D::kMaxMembers)
      .def("add", &index_add, py::arg("texts"), py::arg("num_threads") = 0, py::arg("isa") = "auto",
           "Add texts (list of str); returns (cluster ids int64 (N,), stats dict). GIL released.")
      .def("save", &index_save, py::arg("path"), "Write the index to `path` (atomically, via path + '.tmp').")
      .def_static("load", &index_load, py::arg("path"),
                  "Read an index written by save(); ValueError naming the file if it is not a valid index.")
      .def("__len__", &MinHashIndex::num_docs)
      .def_property_readonly("num_docs", &MinHashIndex::num_docs)
      .def_property_readonly("num_clusters", &MinHashIndex::num_clusters)
      .def_property_readonly("bucket_entries", &MinHashIndex::bucket_entries)
      .def_property_readonly("threshold", &MinHashIndex::threshold)
      .def_property_readonly("ngram", &MinHashIndex::ngram)
      .def_property_readonly("num_perm", &MinHashIndex::num_perm)
      .def_property_readonly("bands", &MinHashIndex::bands)
      .def_property_readonly("seed", &MinHashIndex::seed)
      .def_property_readonly("max_reps", &MinHashIndex::max_reps)
      .def("memory_bytes", &MinHashIndex::memory_bytes, "Bytes held by signatures, cluster ids and buckets.")
      .def("signatures",
           [](const MinHashIndex& index) {
             std::vector<std::uint32_t> sig = index.signatures();
             const py::ssize_t p = index.num_perm();
             py::array_t<std::uint32_t> out({static_cast<py::ssize_t>(sig.size()) / p, p});
             std::copy(sig.begin(), sig.end(), out.mutable_data());
             return out;
           })
      .def("clusters", [](const MinHashIndex& index) {
        std::vector<std::uint32_t> c = index.clusters();
        py::array_t<std::int64_t> out(static_cast<py::ssize_t>(c.size()));
        std::copy(c.begin(), c.end(), out.mutable_data());
        return out;
      });

  m.def("minhash_signatures", &signatures_py, py::arg("texts"), py::arg("num_perm") = D::kNumPerm,
        py::arg("ngram") = D::kNgram, py::arg("seed") = D::kSeed, py::arg("num_threads") = 0, py::arg("isa") = "auto",
        "MinHash signatures of `texts` (list of str): numpy uint32 (N, num_perm); an empty text (no word)\n"
        "gets all 0xFFFFFFFF. Computed with the GIL released; independent of num_threads and isa.");
  m.def("minhash_union_find", &union_find_py, py::arg("texts"), py::arg("threshold") = D::kThreshold,
        py::arg("ngram") = D::kNgram, py::arg("num_perm") = D::kNumPerm, py::arg("bands") = D::kBands,
        py::arg("seed") = D::kSeed, py::arg("max_members") = D::kMaxMembers, py::arg("num_threads") = 0,
        py::arg("isa") = "auto",
        "One-shot union-find MinHash-LSH clustering (see cluster_union_find in minhash.h): returns (cluster\n"
        "ids int64 (N,) = lowest index of each document's component, stats dict). GIL released; the result\n"
        "does not depend on num_threads.");
  m.def("minhash_words", &words_of, py::arg("text"), py::arg("isa") = "auto",
        "The normalised words of `text` (see minhash.h): list of str.");
  m.def("minhash_shingles", &shingles_py, py::arg("text"), py::arg("ngram") = D::kNgram,
        "The shingles of `text`: normalised word n-grams joined by single spaces.");
  m.def(
      "minhash_isa", [](const std::string& name) { return std::string(isa_name(parse_isa(name))); },
      py::arg("name") = "auto", "The SIMD implementation `name` resolves to ('auto' = best on this CPU).");
}

}  // namespace dedup
}  // namespace bmf
