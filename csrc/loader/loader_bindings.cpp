// Python bindings of the native loader: `_C.LoaderConfig` (its settings, named fields), `_C.TokenLoaderCore`
// (wrapped by bigmodel_fast.data.loader.TokenLoader) and `_C.loader_mix` (the hash, exposed so tests can check it
// against the Python reference).
//
// Batches cross into Python without a copy: each C++ buffer is released into a py::capsule that owns it and
// becomes the base of a numpy array (torch.from_numpy then shares the memory). Building and waiting release the
// GIL. ShardError becomes bigmodel_fast.data.shards.ShardFormatError; std::invalid_argument becomes ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
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
  TokenLoaderCore(const std::vector<std::string>& bin_paths, const LoaderConfig& cfg) {
    {
      py::gil_scoped_release release;
      corpus_ = std::make_shared<const Corpus>(bin_paths, cfg);
    }
    prefetcher_ = std::make_unique<Prefetcher>(corpus_, cfg.num_threads, cfg.prefetch);
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

void set_mode(LoaderConfig& cfg, const std::string& mode) {
  if (mode != "causal" && mode != "mlm") throw py::value_error("mode must be 'causal' or 'mlm', got '" + mode + "'");
  cfg.mlm = mode == "mlm";
}

void set_word_start(LoaderConfig& cfg, py::object word_start) {
  if (word_start.is_none()) {
    cfg.word_start.clear();
    return;
  }
  auto table = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(word_start);
  if (!table || table.ndim() != 1) throw py::value_error("word_start must be a 1-D bool array (vocab_size,)");
  cfg.word_start.assign(table.data(), table.data() + table.size());
}

py::object get_word_start(const LoaderConfig& cfg) {
  if (cfg.word_start.empty()) return py::none();
  py::array_t<std::uint8_t> out(static_cast<py::ssize_t>(cfg.word_start.size()));
  std::copy(cfg.word_start.begin(), cfg.word_start.end(), out.mutable_data());
  return std::move(out);
}

void bind_config(py::module_& m) {
  py::class_<LoaderConfig>(m, "LoaderConfig",
                           "Settings of a TokenLoaderCore (named fields; bigmodel_fast.data.loader_config fills "
                           "them). Values are range-checked when the core is built (ValueError naming the field).")
      .def(py::init<>())
      .def_readwrite("seq_len", &LoaderConfig::seq_len)
      .def_readwrite("batch_size", &LoaderConfig::batch_size)
      .def_property(
          "mode", [](const LoaderConfig& c) { return std::string(c.mlm ? "mlm" : "causal"); }, &set_mode,
          "'causal' (GPT windows) or 'mlm' (BERT MLM/NSP pairs)")
      .def_readwrite("seed", &LoaderConfig::seed)
      .def_readwrite("rank", &LoaderConfig::rank)
      .def_readwrite("world_size", &LoaderConfig::world_size)
      .def_readwrite("num_threads", &LoaderConfig::num_threads)
      .def_readwrite("prefetch", &LoaderConfig::prefetch)
      .def_readwrite("mlm_probability", &LoaderConfig::mlm_probability)
      .def_readwrite("whole_word_mask", &LoaderConfig::whole_word_mask)
      .def_readwrite("nsp", &LoaderConfig::nsp)
      .def_readwrite("pack", &LoaderConfig::pack)
      .def_readwrite("pad_id", &LoaderConfig::pad_id)
      .def_readwrite("cls_id", &LoaderConfig::cls_id)
      .def_readwrite("sep_id", &LoaderConfig::sep_id)
      .def_readwrite("mask_id", &LoaderConfig::mask_id)
      .def_readwrite("vocab_size", &LoaderConfig::vocab_size,
                     "random MLM replacements are drawn from the non-special ids of [0, vocab_size); 0 = the shards'")
      .def_readwrite("model_vocab", &LoaderConfig::model_vocab,
                     "> 0: no shard header may exceed it, and every id is scanned once at open")
      .def_readwrite("special", &LoaderConfig::special, "ids never masked (list of int)")
      .def_property("word_start", &get_word_start, &set_word_start,
                    "(vocab_size,) bool table, 1 = piece starts a word (whole-word masking), or None");
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

  bind_config(m);
  py::class_<TokenLoaderCore>(m, "TokenLoaderCore",
                              "Native token loader core; use bigmodel_fast.data.loader.TokenLoader instead.")
      .def(py::init<const std::vector<std::string>&, const LoaderConfig&>(), py::arg("bin_paths"), py::arg("config"))
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
      .def_property_readonly(
          "max_index", [](const TokenLoaderCore& c) { return c.corpus().max_index(); },
          "Largest valid batch index (positions beyond it would overflow int64).")
      .def_property_readonly("shard_vocab_size",
                             [](const TokenLoaderCore& c) { return c.corpus().shard_vocab_size(); });

  m.def("loader_mix", &mix_array, py::arg("x"), "splitmix64 output function over a uint64 array (for tests).");
}

}  // namespace loader
}  // namespace bmf
