#include "loader/batch.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "loader/rng.h"

namespace bmf {
namespace loader {

namespace {

constexpr std::int64_t kIgnore = -100;
constexpr int kMaxOtherAttempts = 64;

// Copies n ids to int64 and returns the largest one (a vectorisable loop; the caller checks the range).
template <typename T>
std::uint32_t copy_ids(const T* src, std::int64_t n, std::int64_t* dst) {
  std::uint32_t top = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint32_t v = src[i];
    dst[i] = static_cast<std::int64_t>(v);
    top = v > top ? v : top;
  }
  return top;
}

// Index of the first id >= limit in src[0, n), or -1 (a max reduction first: vectorised, no branch per id).
template <typename T>
std::int64_t first_id_at_or_above(const T* src, std::int64_t n, std::uint64_t limit) {
  std::uint32_t top = 0;
  for (std::int64_t i = 0; i < n; ++i) top = src[i] > top ? src[i] : top;
  if (top < limit) return -1;
  for (std::int64_t i = 0; i < n; ++i) {
    if (src[i] >= limit) return i;
  }
  return -1;
}

void check_arg(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

Corpus::Corpus(const std::vector<std::string>& bin_paths, const LoaderConfig& cfg) : cfg_(cfg) {
  check_arg(!bin_paths.empty(),
            "shards: no token shards given: expected at least one .bin/.idx pair (run `bmf prepare` first)");
  check_arg(cfg.seq_len >= 1, "seq_len must be >= 1, got " + std::to_string(cfg.seq_len));
  check_arg(cfg.batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(cfg.batch_size));
  check_arg(cfg.world_size >= 1, "world_size must be >= 1, got " + std::to_string(cfg.world_size));
  check_arg(cfg.rank >= 0 && cfg.rank < cfg.world_size,
            "rank must be in [0, world_size=" + std::to_string(cfg.world_size) + "), got " + std::to_string(cfg.rank));
  check_arg(cfg.seq_len < std::numeric_limits<std::int32_t>::max() / 2 / cfg.batch_size,
            "batch_size * seq_len must fit int32 cu_seqlens (< 2^30), got batch_size=" +
                std::to_string(cfg.batch_size) + ", seq_len=" + std::to_string(cfg.seq_len));

  shard_start_.push_back(0);
  for (const std::string& path : bin_paths) {
    shards_.push_back(std::make_unique<ShardFile>(path));
    const ShardFile& s = *shards_.back();
    if (shards_.size() == 1) {
      shard_vocab_ = s.vocab_size();
    } else if (s.vocab_size() != shard_vocab_) {
      throw ShardError(path,
                       "vocab_size " + std::to_string(s.vocab_size()) + " differs from " + shards_.front()->bin_path() +
                           " (" + std::to_string(shard_vocab_) + ")",
                       "every shard of one loader to share a vocabulary",
                       "load shards written with the same tokenizer; " + std::string(kRebuildHint));
    }
    if (cfg.model_vocab > 0) check_model_vocab(static_cast<int>(shards_.size() - 1));
    total_tokens_ += s.num_tokens();
    num_docs_ += s.num_docs();
    shard_start_.push_back(total_tokens_);
  }

  if (!cfg_.mlm) {
    check_arg(total_tokens_ >= cfg.seq_len + 1, "seq_len=" + std::to_string(cfg.seq_len) +
                                                    " needs windows of seq_len + 1 tokens but the shards hold only " +
                                                    std::to_string(total_tokens_) + " tokens");
    num_samples_ = (total_tokens_ - 1) / cfg.seq_len;
    return;
  }

  check_arg(cfg.seq_len >= 5, "seq_len must be >= 5 for [CLS] A [SEP] B [SEP], got " + std::to_string(cfg.seq_len));
  check_arg(cfg.mlm_probability > 0.0 && cfg.mlm_probability < 1.0,
            "mlm_probability must be in (0, 1), got " + std::to_string(cfg.mlm_probability));
  const double scaled = cfg.mlm_probability * 65536.0 + 0.5;
  select_threshold_ = static_cast<std::uint32_t>(scaled);  // floor (scaled > 0)
  check_arg(select_threshold_ >= 1 && select_threshold_ <= 65535,
            "mlm_probability must be in [1/65536, 65535/65536] (masking uses 16-bit uniforms), got " +
                std::to_string(cfg.mlm_probability));
  check_arg(!cfg.special.empty(), "special_ids: at least the [PAD]/[CLS]/[SEP]/[MASK] ids are needed");
  std::int64_t top = 0;
  for (std::int64_t s : cfg.special) {
    check_arg(s >= 0, "special_ids: ids must be >= 0, got " + std::to_string(s));
    top = std::max(top, s);
  }
  for (std::int64_t s : {cfg.pad_id, cfg.cls_id, cfg.sep_id, cfg.mask_id}) {
    check_arg(std::find(cfg.special.begin(), cfg.special.end(), s) != cfg.special.end(),
              "special_ids: pad/cls/sep/mask id " + std::to_string(s) + " must be listed in special");
  }
  is_special_.assign(static_cast<std::size_t>(top + 1), 0);
  for (std::int64_t s : cfg.special) is_special_[static_cast<std::size_t>(s)] = 1;
  if (cfg_.vocab_size <= 0) cfg_.vocab_size = static_cast<std::int64_t>(shard_vocab_);  // default: the shards'
  check_arg(cfg.model_vocab <= 0 || cfg_.vocab_size <= cfg.model_vocab,
            "special_ids: vocab_size=" + std::to_string(cfg_.vocab_size) + " exceeds the model's vocabulary (" +
                std::to_string(cfg.model_vocab) + "): random replacement ids would be out of range");
  special_sorted_.clear();
  for (std::int64_t s = 0; s <= top && s < cfg_.vocab_size; ++s) {
    if (is_special_[static_cast<std::size_t>(s)]) special_sorted_.push_back(s);
  }
  random_span_ = cfg_.vocab_size - static_cast<std::int64_t>(special_sorted_.size());
  check_arg(random_span_ > 0,
            "vocab_size=" + std::to_string(cfg_.vocab_size) + " leaves no non-special id for random replacement");
  if (cfg.whole_word_mask) {
    check_arg(!cfg.word_start.empty(), "word_start: whole_word_mask=True needs the (vocab_size,) word-start table");
  }

  const std::int64_t budget = cfg.seq_len - 3;
  cum_chunks_.push_back(0);
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    const ShardFile& sh = *shards_[s];
    const std::int64_t* off = sh.offsets();
    for (std::int64_t d = 0; d < sh.num_docs(); ++d) {
      const std::int64_t n = off[d + 1] - off[d];
      if (n < 2) continue;
      doc_shard_.push_back(static_cast<std::int32_t>(s));
      doc_begin_.push_back(off[d]);
      doc_len_.push_back(n);
      cum_chunks_.push_back(cum_chunks_.back() + (n + budget - 2) / budget);  // no tail chunk of 1 token
    }
  }
  check_arg(!doc_len_.empty(), "the shards hold no document of at least 2 tokens");
  check_arg(!cfg.nsp || doc_len_.size() >= 2,
            "nsp: NSP needs at least two documents of >= 2 tokens; pass nsp=False for a one-document corpus");
  num_samples_ = cum_chunks_.back();
}

std::int64_t Corpus::max_index() const {
  // largest index whose sample positions (index * world_size + rank) * batch_size + e stay below INT64_MAX
  return (std::numeric_limits<std::int64_t>::max() - cfg_.batch_size) / (cfg_.world_size * cfg_.batch_size) - 1;
}

void Corpus::check_index(std::int64_t index) const {
  if (index < 0 || index > max_index())
    throw std::out_of_range("batch index must be in [0, " + std::to_string(max_index()) + "], got " +
                            std::to_string(index));
}

void Corpus::sample_of(std::int64_t index, std::int64_t e, std::int64_t* epoch, std::int64_t* item) const {
  check_index(index);
  if (e < 0 || e >= cfg_.batch_size)
    throw std::out_of_range("row must be in [0, batch_size=" + std::to_string(cfg_.batch_size) + "), got " +
                            std::to_string(e));
  const std::int64_t p = (index * cfg_.world_size + cfg_.rank) * cfg_.batch_size + e;
  *epoch = p / num_samples_;
  const std::int64_t slot = p % num_samples_;
  EpochPermutation perm(cfg_.seed, static_cast<std::uint64_t>(*epoch), static_cast<std::uint64_t>(num_samples_));
  *item = static_cast<std::int64_t>(perm(static_cast<std::uint64_t>(slot)));
}

void Corpus::bad_id(int shard, std::int64_t pos, std::uint32_t id) const {
  const ShardFile& s = *shards_[static_cast<std::size_t>(shard)];
  const std::int64_t* off = s.offsets();
  const std::int64_t doc = static_cast<std::int64_t>(std::upper_bound(off, off + s.num_docs() + 1, pos) - off) - 1;
  throw ShardError(s.bin_path(),
                   "token id " + std::to_string(id) + " at token offset " + std::to_string(pos) + " (document " +
                       std::to_string(doc) + ") is out of range",
                   "ids < vocab_size (" + std::to_string(s.vocab_size()) + ")",
                   "the shard does not match this tokenizer/vocab_size; " + std::string(kRebuildHint));
}

void Corpus::check_model_vocab(int shard) const {
  const ShardFile& s = *shards_[static_cast<std::size_t>(shard)];
  const std::uint64_t model = static_cast<std::uint64_t>(cfg_.model_vocab);
  if (s.vocab_size() > model) {
    throw ShardError(s.bin_path(),
                     "header vocab_size " + std::to_string(s.vocab_size()) +
                         " is larger than the model's vocabulary (" + std::to_string(model) + ")",
                     "vocab_size <= " + std::to_string(model),
                     "the shards were written with a different tokenizer; " + std::string(kRebuildHint));
  }
  const std::int64_t bad =
      s.dtype_code() == 1
          ? first_id_at_or_above(static_cast<const std::uint16_t*>(s.tokens()), s.num_tokens(), s.vocab_size())
          : first_id_at_or_above(static_cast<const std::uint32_t*>(s.tokens()), s.num_tokens(), s.vocab_size());
  if (bad >= 0) {
    const std::uint32_t id = s.dtype_code() == 1 ? static_cast<const std::uint16_t*>(s.tokens())[bad]
                                                 : static_cast<const std::uint32_t*>(s.tokens())[bad];
    bad_id(shard, bad, id);
  }
}

void Corpus::read_stream(std::int64_t start, std::int64_t n, std::int64_t* dst,
                         std::vector<std::int64_t>* boundaries) const {
  std::int64_t t = 0;  // position inside the requested span
  int s =
      static_cast<int>(std::upper_bound(shard_start_.begin(), shard_start_.end(), start) - shard_start_.begin()) - 1;
  while (t < n) {
    const ShardFile& sh = *shards_[static_cast<std::size_t>(s)];
    const std::int64_t local = start + t - shard_start_[static_cast<std::size_t>(s)];
    const std::int64_t take = std::min(n - t, sh.num_tokens() - local);
    if (take <= 0) {  // empty shard or end of this one
      ++s;
      continue;
    }
    const std::uint32_t top = sh.dtype_code() == 1
                                  ? copy_ids(static_cast<const std::uint16_t*>(sh.tokens()) + local, take, dst + t)
                                  : copy_ids(static_cast<const std::uint32_t*>(sh.tokens()) + local, take, dst + t);
    if (top >= sh.vocab_size()) {
      for (std::int64_t k = 0; k < take; ++k) {
        if (static_cast<std::uint64_t>(dst[t + k]) >= sh.vocab_size())
          bad_id(s, local + k, static_cast<std::uint32_t>(dst[t + k]));
      }
    }
    if (boundaries != nullptr) {
      // Document starts strictly after the span's first token: offsets in [local + (t == 0), local + take).
      const std::int64_t* off = sh.offsets();
      const std::int64_t* end = off + sh.num_docs();  // offsets[num_docs] is the end, not a start
      const std::int64_t lo = local + (t == 0 ? 1 : 0);
      std::int64_t last = -1;
      for (const std::int64_t* p = std::lower_bound(off, end, lo); p != end && *p < local + take; ++p) {
        if (*p == last) continue;  // empty documents repeat an offset
        last = *p;
        boundaries->push_back(t + (*p - local));
      }
    }
    t += take;
    ++s;
  }
}

void Corpus::read_doc(std::int64_t doc, std::int64_t begin, std::int64_t n, std::int64_t* dst) const {
  const int s = doc_shard_[static_cast<std::size_t>(doc)];
  const ShardFile& sh = *shards_[static_cast<std::size_t>(s)];
  const std::int64_t local = doc_begin_[static_cast<std::size_t>(doc)] + begin;
  const std::uint32_t top = sh.dtype_code() == 1
                                ? copy_ids(static_cast<const std::uint16_t*>(sh.tokens()) + local, n, dst)
                                : copy_ids(static_cast<const std::uint32_t*>(sh.tokens()) + local, n, dst);
  if (top >= sh.vocab_size()) {
    for (std::int64_t k = 0; k < n; ++k) {
      if (static_cast<std::uint64_t>(dst[k]) >= sh.vocab_size())
        bad_id(s, local + k, static_cast<std::uint32_t>(dst[k]));
    }
  }
}

std::int64_t Corpus::doc_of_chunk(std::int64_t chunk) const {
  return static_cast<std::int64_t>(std::upper_bound(cum_chunks_.begin(), cum_chunks_.end(), chunk) -
                                   cum_chunks_.begin()) -
         1;
}

void Corpus::build(std::int64_t index, Batch* out) const {
  check_index(index);
  out->index = index;
  if (cfg_.mlm) {
    build_mlm(index, out);
  } else {
    build_causal(index, out);
  }
}

void Corpus::build_causal(std::int64_t index, Batch* out) const {
  const std::int64_t B = cfg_.batch_size, S = cfg_.seq_len;
  out->input_ids.allocate(B * S);
  out->labels.allocate(B * S);
  if (cfg_.pack) {
    out->position_ids.allocate(B * S);
    out->cu_seqlens.clear();
    out->cu_seqlens.reserve(static_cast<std::size_t>(B + 1));
  }
  std::vector<std::int64_t> window(static_cast<std::size_t>(S + 1));
  std::vector<std::int64_t> bounds;
  std::int32_t max_len = 0;
  for (std::int64_t e = 0; e < B; ++e) {
    std::int64_t epoch, item;
    sample_of(index, e, &epoch, &item);
    bounds.clear();
    read_stream(item * S, S + 1, window.data(), cfg_.pack ? &bounds : nullptr);
    std::int64_t* x = out->input_ids.data.get() + e * S;
    std::int64_t* y = out->labels.data.get() + e * S;
    std::copy(window.begin(), window.begin() + S, x);
    std::copy(window.begin() + 1, window.end(), y);
    if (!cfg_.pack) continue;
    // Segments of this row start at 0 and at every document start < S; a label whose target starts a new
    // document is ignored (the model cannot see the previous document, so that target is noise).
    std::int64_t* pos = out->position_ids.data.get() + e * S;
    std::int64_t seg = 0;
    out->cu_seqlens.push_back(static_cast<std::int32_t>(e * S));
    for (std::int64_t b : bounds) {  // sorted, 1 <= b <= S
      y[b - 1] = kIgnore;
      if (b == S) break;
      for (std::int64_t t = seg; t < b; ++t) pos[t] = t - seg;
      max_len = std::max<std::int32_t>(max_len, static_cast<std::int32_t>(b - seg));
      seg = b;
      out->cu_seqlens.push_back(static_cast<std::int32_t>(e * S + b));
    }
    for (std::int64_t t = seg; t < S; ++t) pos[t] = t - seg;
    max_len = std::max<std::int32_t>(max_len, static_cast<std::int32_t>(S - seg));
  }
  if (cfg_.pack) {
    out->cu_seqlens.push_back(static_cast<std::int32_t>(B * S));
    out->max_seqlen = max_len;
  }
}

void Corpus::build_mlm(std::int64_t index, Batch* out) const {
  const std::int64_t B = cfg_.batch_size, S = cfg_.seq_len;
  const std::int64_t num_docs = static_cast<std::int64_t>(doc_len_.size());
  out->input_ids.allocate(B * S);
  out->labels.allocate(B * S);
  out->token_type_ids.allocate(B * S);
  out->attention_mask.allocate(B * S);
  if (cfg_.nsp) out->nsp_labels.allocate(B);
  if (cfg_.pack) {
    out->cu_seqlens.clear();
    out->cu_seqlens.reserve(static_cast<std::size_t>(2 * B + 1));
  }
  const std::int64_t budget = S - 3;
  const std::uint8_t* special = is_special_.data();
  const std::int64_t special_size = static_cast<std::int64_t>(is_special_.size());
  const std::uint8_t* word_start = cfg_.word_start.data();
  const std::int64_t word_start_size = static_cast<std::int64_t>(cfg_.word_start.size());
  const std::uint64_t random_span = static_cast<std::uint64_t>(random_span_);
  std::int32_t max_len = 0;

  for (std::int64_t e = 0; e < B; ++e) {
    std::int64_t epoch, chunk;
    sample_of(index, e, &epoch, &chunk);
    const std::uint64_t ex =
        sample_key(cfg_.seed, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(chunk));
    const std::int64_t d = doc_of_chunk(chunk);
    const std::int64_t k = chunk - cum_chunks_[static_cast<std::size_t>(d)];
    const std::int64_t begin = k * budget;
    const std::int64_t L = std::min(budget, doc_len_[static_cast<std::size_t>(d)] - begin);  // >= 2
    const std::int64_t cut = 1 + static_cast<std::int64_t>(purpose_key(ex, kCut) % static_cast<std::uint64_t>(L - 1));

    std::int64_t* x = out->input_ids.data.get() + e * S;
    std::int64_t* lab = out->labels.data.get() + e * S;
    std::int64_t* tt = out->token_type_ids.data.get() + e * S;
    std::uint8_t* am = out->attention_mask.data.get() + e * S;

    x[0] = cfg_.cls_id;
    read_doc(d, begin, cut, x + 1);
    x[cut + 1] = cfg_.sep_id;
    std::int64_t b_len = L - cut;
    std::int64_t nsp_label = 0;
    if (cfg_.nsp && (purpose_key(ex, kNsp) >> 63) == 1) {
      const std::uint64_t other_key = purpose_key(ex, kOther);
      std::int64_t d2 = d;
      for (int a = 0; a < kMaxOtherAttempts && d2 == d; ++a) {
        const std::uint64_t c2 =
            mix(other_key ^ static_cast<std::uint64_t>(a)) % static_cast<std::uint64_t>(num_samples_);
        d2 = doc_of_chunk(static_cast<std::int64_t>(c2));
      }
      if (d2 == d) d2 = (d + 1) % num_docs;
      const std::int64_t m = doc_len_[static_cast<std::size_t>(d2)];
      b_len = std::min(b_len, m);
      const std::int64_t b_start =
          static_cast<std::int64_t>(purpose_key(ex, kBStart) % static_cast<std::uint64_t>(m - b_len + 1));
      read_doc(d2, b_start, b_len, x + cut + 2);
      nsp_label = 1;
    } else {
      read_doc(d, begin + cut, b_len, x + cut + 2);
    }
    const std::int64_t n = cut + b_len + 3;
    x[n - 1] = cfg_.sep_id;
    if (cfg_.nsp) out->nsp_labels.data[static_cast<std::size_t>(e)] = nsp_label;
    for (std::int64_t j = 0; j < S; ++j) {
      tt[j] = (j >= cut + 2 && j < n) ? 1 : 0;
      am[j] = j < n ? 1 : 0;
      lab[j] = kIgnore;
    }
    std::fill(x + n, x + S, cfg_.pad_id);

    // Dynamic masking (the key includes the epoch): select with 16-bit uniforms, four per hash, keyed by the
    // position (or, with whole-word masking, by the position of the word's first piece); then 80/10/10.
    const std::uint64_t select_key = purpose_key(ex, kSelect);
    const std::uint64_t roll_key = purpose_key(ex, kRoll);
    std::uint64_t cached_block = ~std::uint64_t{0}, cached_bits = 0;
    std::int64_t head = 0;
    bool prev_special = true;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t id = x[j];
      if (id < special_size && special[id]) {
        prev_special = true;
        continue;
      }
      if (!cfg_.whole_word_mask || prev_special || (id < word_start_size && word_start[id])) head = j;
      prev_special = false;
      const std::uint64_t block = static_cast<std::uint64_t>(head) >> 2;
      if (block != cached_block) {
        cached_block = block;
        cached_bits = mix(select_key ^ block);
      }
      const std::uint32_t u = static_cast<std::uint32_t>((cached_bits >> (16 * (head & 3))) & 0xFFFF);
      if (u >= select_threshold_) continue;
      lab[j] = id;
      const std::uint64_t r = mix(roll_key ^ static_cast<std::uint64_t>(j));
      const std::uint64_t roll = r % 10;
      if (roll < 8) {
        x[j] = cfg_.mask_id;
      } else if (roll == 8) {
        // the k-th non-special id of [0, vocab_size): step over the sorted special ids at or below it
        std::int64_t v = static_cast<std::int64_t>((r >> 16) % random_span);
        for (std::int64_t sp : special_sorted_) {
          if (sp > v) break;
          ++v;
        }
        x[j] = v;
      }
    }
    if (cfg_.pack) {
      out->cu_seqlens.push_back(static_cast<std::int32_t>(e * S));
      if (n < S) out->cu_seqlens.push_back(static_cast<std::int32_t>(e * S + n));
      max_len = std::max<std::int32_t>(max_len, static_cast<std::int32_t>(std::max(n, S - n)));
    }
  }
  if (cfg_.pack) {
    out->cu_seqlens.push_back(static_cast<std::int32_t>(B * S));
    out->max_seqlen = max_len;
  }
}

}  // namespace loader
}  // namespace bmf
