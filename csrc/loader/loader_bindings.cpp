// Python bindings of the native loader: `_C.TokenLoaderCore` (wrapped by bigmodel_fast.data.loader.TokenLoader)
// and `_C.loader_mix` (the hash, exposed so tests can check it against the Python reference).
//
// Batches cross into Python without a copy: each C++ buffer is released into a py::capsule that owns it and
// becomes the base of a numpy array (torch.from_numpy then shares the memory). Building and waiting release the
// GIL. ShardError becomes bigmodel_fast.data.shards.ShardFormatError; std::invalid_argument becomes ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loader/batch.h"
#include "loader/loader.h"
#include "loader/rng.h"

namespace py = pybind11;

namespace bmf {
namespace loader {
namespace {

template <typename T>
py::array to_numpy(Buffer<T>& buf, std::vector<py::ssize_t> shape) {
  T* raw = buf.data.release();
  py::capsule owner(raw, [](void* p) { delete[] static_cast<T*>(p); });
  if (std::is_same<T, std::uint8_t>::value) return py::array(py::dtype::of<bool>(), shape, {}, raw, owner);
  return py::array_t<T>(shape, {}, raw, owner);
}

py::array vector_to_numpy(std::vector<std::int32_t>&& v) {
  auto* owned = new std::vector<std::int32_t>(std::move(v));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<std::int32_t>*>(p); });
  return py::array_t<std::int32_t>({static_cast<py::ssize_t>(owned->size())}, {}, owned->data(), owner);
}

class TokenLoaderCore {
 public:
  TokenLoaderCore(const std::vector<std::string>& bin_paths, const LoaderConfig& cfg, int num_threads, int prefetch) {
    {
      py::gil_scoped_release release;
      corpus_ = std::make_shared<const Corpus>(bin_paths, cfg);
    }
    prefetcher_ = std::make_unique<Prefetcher>(corpus_, num_threads, prefetch);
  }

  py::dict next() {
    std::unique_ptr<Batch> batch;
    {
      py::gil_scoped_release release;
      batch = prefetcher_->next();
    }
    return to_dict(*batch);
  }

  py::dict batch(std::int64_t index) {
    Batch batch;
    {
      py::gil_scoped_release release;
      corpus_->build(index, &batch);
    }
    return to_dict(batch);
  }

  std::int64_t position() const { return prefetcher_->position(); }
  std::int64_t waits() const { return prefetcher_->waits(); }

  void seek(std::int64_t index) {
    py::gil_scoped_release release;
    prefetcher_->seek(index);
  }

  void close() {
    py::gil_scoped_release release;
    prefetcher_->stop();
  }

  py::tuple sample_of(std::int64_t index, std::int64_t e) const {
    std::int64_t epoch, item;
    corpus_->sample_of(index, e, &epoch, &item);
    return py::make_tuple(epoch, item);
  }

  const Corpus& corpus() const { return *corpus_; }

 private:
  py::dict to_dict(Batch& b) const {
    const LoaderConfig& cfg = corpus_->config();
    const py::ssize_t B = cfg.batch_size, S = cfg.seq_len;
    py::dict out;
    out["input_ids"] = to_numpy(b.input_ids, {B, S});
    if (cfg.mlm) {
      out["token_type_ids"] = to_numpy(b.token_type_ids, {B, S});
      out["attention_mask"] = to_numpy(b.attention_mask, {B, S});
      out["mlm_labels"] = to_numpy(b.labels, {B, S});
      if (cfg.nsp) out["nsp_labels"] = to_numpy(b.nsp_labels, {B});
    } else {
      out["labels"] = to_numpy(b.labels, {B, S});
      if (cfg.pack) out["position_ids"] = to_numpy(b.position_ids, {B, S});
    }
    if (cfg.pack) {
      out["cu_seqlens"] = vector_to_numpy(std::move(b.cu_seqlens));
      out["max_seqlen"] = py::int_(b.max_seqlen);
    }
    return out;
  }

  std::shared_ptr<const Corpus> corpus_;
  std::unique_ptr<Prefetcher> prefetcher_;
};

std::unique_ptr<TokenLoaderCore> make_core(const std::vector<std::string>& bin_paths, std::int64_t seq_len,
                                           std::int64_t batch_size, const std::string& mode, std::uint64_t seed,
                                           std::int64_t rank, std::int64_t world_size, int num_threads, int prefetch,
                                           double mlm_probability, bool whole_word_mask, bool nsp, bool pack,
                                           std::int64_t pad_id, std::int64_t cls_id, std::int64_t sep_id,
                                           std::int64_t mask_id, std::int64_t vocab_size,
                                           const std::vector<std::int64_t>& special, py::object word_start,
                                           std::int64_t model_vocab) {
  if (mode != "causal" && mode != "mlm") {
    throw py::value_error("mode must be 'causal' or 'mlm', got '" + mode + "'");
  }
  LoaderConfig cfg;
  cfg.seq_len = seq_len;
  cfg.batch_size = batch_size;
  cfg.mlm = mode == "mlm";
  cfg.seed = seed;
  cfg.rank = rank;
  cfg.world_size = world_size;
  cfg.mlm_probability = mlm_probability;
  cfg.whole_word_mask = whole_word_mask;
  cfg.nsp = nsp;
  cfg.pack = pack;
  cfg.pad_id = pad_id;
  cfg.cls_id = cls_id;
  cfg.sep_id = sep_id;
  cfg.mask_id = mask_id;
  cfg.vocab_size = vocab_size;
  cfg.special = special;
  cfg.model_vocab = model_vocab;
  if (!word_start.is_none()) {
    auto table = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(word_start);
    if (!table || table.ndim() != 1) throw py::value_error("word_start must be a 1-D bool array (vocab_size,)");
    cfg.word_start.assign(table.data(), table.data() + table.size());
  }
  return std::make_unique<TokenLoaderCore>(bin_paths, cfg, num_threads, prefetch);
}

py::array_t<std::uint64_t> mix_array(py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast> x) {
  py::array_t<std::uint64_t> out(x.request().shape);
  const std::uint64_t* src = x.data();
  std::uint64_t* dst = out.mutable_data();
  for (py::ssize_t i = 0; i < x.size(); ++i) dst[i] = mix(src[i]);
  return out;
}

}  // namespace

void loader_init(py::module_& m) {
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShardError& e) {
      try {
        py::object cls = py::module_::import("bigmodel_fast.data.shards").attr("ShardFormatError");
        py::object err = cls(e.path, e.problem, e.expected, e.hint);
        PyErr_SetObject(cls.ptr(), err.ptr());
      } catch (py::error_already_set&) {
        PyErr_SetString(PyExc_ValueError, e.what());
      }
    }
  });

  py::class_<TokenLoaderCore>(m, "TokenLoaderCore",
                              "Native token loader core; use bigmodel_fast.data.loader.TokenLoader instead.")
      .def(py::init(&make_core), py::arg("bin_paths"), py::arg("seq_len"), py::arg("batch_size"), py::arg("mode"),
           py::arg("seed"), py::arg("rank"), py::arg("world_size"), py::arg("num_threads"), py::arg("prefetch"),
           py::arg("mlm_probability"), py::arg("whole_word_mask"), py::arg("nsp"), py::arg("pack"),
           py::arg("pad_id"), py::arg("cls_id"), py::arg("sep_id"), py::arg("mask_id"), py::arg("vocab_size"),
           py::arg("special"), py::arg("word_start"), py::arg("model_vocab") = 0)
      .def("next", &TokenLoaderCore::next, "The batch at position(), then advance (blocks without the GIL).")
      .def("batch", &TokenLoaderCore::batch, py::arg("index"), "Build batch `index` on this thread (no state change).")
      .def("seek", &TokenLoaderCore::seek, py::arg("index"))
      .def("close", &TokenLoaderCore::close, "Join the worker threads (they restart on the next next()).")
      .def("sample_of", &TokenLoaderCore::sample_of, py::arg("index"), py::arg("example"),
           "(epoch, sample) that fill example `example` of batch `index`.")
      .def_property_readonly("position", &TokenLoaderCore::position)
      .def_property_readonly("waits", &TokenLoaderCore::waits,
                             "next() calls that had to wait for a worker (the batch was not prefetched yet)")
      .def_property_readonly("num_samples", [](const TokenLoaderCore& c) { return c.corpus().num_samples(); })
      .def_property_readonly("num_tokens", [](const TokenLoaderCore& c) { return c.corpus().num_tokens(); })
      .def_property_readonly("num_docs", [](const TokenLoaderCore& c) { return c.corpus().num_docs(); })
      .def_property_readonly("max_index", [](const TokenLoaderCore& c) { return c.corpus().max_index(); },
                             "Largest valid batch index (positions beyond it would overflow int64).")
      .def_property_readonly("shard_vocab_size",
                             [](const TokenLoaderCore& c) { return c.corpus().shard_vocab_size(); });

  m.def("loader_mix", &mix_array, py::arg("x"), "splitmix64 output function over a uint64 array (for tests).");
}

}  // namespace loader
}  // namespace bmf
