// Batch construction: causal windows and BERT MLM/NSP pairs over many memory-mapped shards.
//
// A batch is a pure function of (config, batch index): see "Epochs and randomness" in
// bigmodel_fast/data/loader_reference.py (the Python reference, bit-identical). Everything here is GIL-free and
// thread-safe (const after construction).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loader/shard_file.h"

namespace bmf {
namespace loader {

// Everything the loader is built from; bound to Python as `_C.LoaderConfig` (named fields), which
// LoaderSettings.native (bigmodel_fast/data/loader_config.py) fills from the LoaderSettings dataclass (the one place
// of the defaults) and SpecialIds. The member initialisers here are only "unset" values; Corpus and Prefetcher
// reject what is out of range (std::invalid_argument: ValueError in Python).
struct LoaderConfig {
  std::int64_t seq_len = 0;
  std::int64_t batch_size = 0;
  bool mlm = false;  // Python: mode = "mlm" | "causal"
  std::uint64_t seed = 0;
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
  int num_threads = 1;  // Prefetcher workers
  int prefetch = 1;     // Prefetcher ring slots
  double mlm_probability = 0.0;
  bool whole_word_mask = false;
  bool nsp = false;
  bool pack = false;
  std::int64_t pad_id = -1, cls_id = -1, sep_id = -1, mask_id = -1;  // mlm: each must be listed in `special`
  std::int64_t vocab_size = 0;           // random replacements: the non-special ids of [0, vocab_size)
  std::int64_t model_vocab = 0;          // > 0: no shard header may exceed it, and every id is scanned once at open
  std::vector<std::int64_t> special;     // never masked
  std::vector<std::uint8_t> word_start;  // (vocab,) 1 = piece starts a word; whole-word masking only
};

// A heap buffer handed to Python without a copy (the bindings release it into a capsule).
template <typename T>
struct Buffer {
  std::unique_ptr<T[]> data;
  std::int64_t size = 0;
  void allocate(std::int64_t n) {
    data.reset(new T[static_cast<std::size_t>(n > 0 ? n : 1)]);
    size = n;
  }
};

struct Batch {
  std::int64_t index = -1;
  Buffer<std::int64_t> input_ids;        // (B, S)
  Buffer<std::int64_t> labels;           // (B, S): causal next-token labels or MLM labels, -100 = ignored
  Buffer<std::int64_t> position_ids;     // (B, S) causal + pack only
  Buffer<std::int64_t> token_type_ids;   // (B, S) mlm only
  Buffer<std::uint8_t> attention_mask;   // (B, S) mlm only
  Buffer<std::int64_t> nsp_labels;       // (B,) mlm + nsp only
  std::vector<std::int32_t> cu_seqlens;  // pack only: (N + 1,) over the flattened B * S tokens
  std::int32_t max_seqlen = 0;
};

class Corpus {
 public:
  Corpus(const std::vector<std::string>& bin_paths, const LoaderConfig& cfg);

  const LoaderConfig& config() const { return cfg_; }
  // Samples per epoch: causal windows or MLM chunks.
  std::int64_t num_samples() const { return num_samples_; }
  std::int64_t num_tokens() const { return total_tokens_; }
  std::int64_t num_docs() const { return num_docs_; }
  std::uint64_t shard_vocab_size() const { return shard_vocab_; }
  // Throws std::out_of_range unless 0 <= index <= max_index(), so that sample positions cannot overflow int64.
  void check_index(std::int64_t index) const;
  std::int64_t max_index() const;
  // Which sample (window / chunk) and epoch fill example `e` of batch `index` (tests and tools); throws
  // std::out_of_range for a bad index or row.
  void sample_of(std::int64_t index, std::int64_t e, std::int64_t* epoch, std::int64_t* item) const;

  void build(std::int64_t index, Batch* out) const;

 private:
  void build_causal(std::int64_t index, Batch* out) const;
  void build_mlm(std::int64_t index, Batch* out) const;
  // Copies stream tokens [start, start + n) into dst; appends document starts at relative positions >= 1 to
  // `boundaries` (when non-null). Checks every id against the shard's vocab_size.
  void read_stream(std::int64_t start, std::int64_t n, std::int64_t* dst, std::vector<std::int64_t>* boundaries) const;
  void read_doc(std::int64_t doc, std::int64_t begin, std::int64_t n, std::int64_t* dst) const;
  std::int64_t doc_of_chunk(std::int64_t chunk) const;
  [[noreturn]] void bad_id(int shard, std::int64_t pos, std::uint32_t id) const;
  // Rejects a header vocab_size above cfg_.model_vocab and scans every id of shard `s` against its vocab_size.
  void check_model_vocab(int s) const;

  LoaderConfig cfg_;
  std::vector<std::unique_ptr<ShardFile>> shards_;
  std::vector<std::int64_t> shard_start_;  // (num_shards + 1,) stream position of each shard's first token
  std::int64_t total_tokens_ = 0;
  std::int64_t num_docs_ = 0;
  std::uint64_t shard_vocab_ = 0;
  std::int64_t num_samples_ = 0;
  // mlm: documents with >= 2 tokens, and their chunks of seq_len - 3 tokens
  std::vector<std::int32_t> doc_shard_;
  std::vector<std::int64_t> doc_begin_;  // token offset inside its shard
  std::vector<std::int64_t> doc_len_;
  std::vector<std::int64_t> cum_chunks_;      // (D + 1,)
  std::vector<std::uint8_t> is_special_;      // indexed by id, up to max(special)
  std::uint32_t select_threshold_ = 0;        // 16-bit uniform < threshold selects a position
  std::vector<std::int64_t> special_sorted_;  // the special ids < vocab_size, ascending
  std::int64_t random_span_ = 0;  // non-special ids in [0, vocab_size): random replacements are drawn from them
};

}  // namespace loader
}  // namespace bmf
