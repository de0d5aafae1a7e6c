// MinHash near-duplicate detection: text normalisation, word n-gram shingles, signatures, an
// incremental LSH index (banding + verified, deterministic greedy online clustering) that can be saved
// and loaded, and one-shot union-find clustering (cluster_union_find: connected components of the
// verified candidate pairs).
//
// Plain C++ (no Python API), so everything here can run on worker threads with the GIL released.
//
// Pipeline for one text (code units of a CPython str: Latin-1, UCS-2 or UCS-4):
//   1. normalise: lowercase (ASCII, Latin-1, Latin Extended-A/B (regular parts), Latin Extended
//      Additional, Greek, Cyrillic, Armenian, Georgian, fullwidth Latin: as Python's per-character
//      str.lower() except U+0130 -> 'i'; other characters unchanged), punctuation / symbols / spaces /
//      emoji / controls separate words, zero-width characters, soft hyphens, variation selectors are
//      ignored. Characters of scripts written without spaces (CJK ideographs and radicals, Hiragana,
//      Katakana, Bopomofo, Thai, Lao, Khmer, Myanmar, Yi) are one word each, so Chinese text gets
//      character n-grams. The result is the list of words (UTF-8); all-ASCII text takes an AVX2 path.
//   2. shingles: every run of `ngram` consecutive words ("w1 w2 ... wn"); a text with 1..ngram-1
//      words has one shingle (all its words); a text with no word is "empty".
//   3. shingle hash: each word w gets a 64-bit hash wh(w) (word_hash in minhash_text.cpp: fmix64 of the
//      word's bytes read as little-endian 64-bit words, seeded); shingle k hashes to
//      x = low 32 bits of fmix64(sum_j wh(w[k+j]) * B^(n-1-j) mod 2^64), B an odd constant
//      (a polynomial hash of the word hashes: each word is hashed once, whatever n).
//   (band keys, for LSH: fmix64 of a multiply-rotate chain over the band's rows, see band_keys.)
//   4. signature slot i (of num_perm): min over shingles of h_i(x) = ((a_i * x + b_i) mod 2^64) >> 32,
//      a_i, b_i 64-bit from splitmix64(seed) (multiply-add-shift: a 2-independent family on 32-bit
//      keys; exact integer arithmetic, so the AVX-512 / AVX2 / scalar paths agree bit for bit).
//      An empty text's signature is all 0xFFFFFFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace bmf {
namespace dedup {

// Limits of the MinHash parameters, shared by the Python bindings and the index file reader; exported to Python
// as `_C.MINHASH_LIMITS` (read by bigmodel_fast/data/minhash_config.py, never retyped there).
constexpr long long kMaxNumPerm = 1 << 16;
constexpr long long kMaxNgram = 1 << 16;
constexpr long long kMaxReps = 65535;  // also the largest max_members of union-find

// Defaults of the MinHash parameters (the bindings' keyword defaults); exported as `_C.MINHASH_DEFAULTS`, and
// tests/data/test_minhash.py checks they equal bigmodel_fast.data.minhash_config.MinHashConfig's.
struct MinHashDefaults {
  static constexpr double kThreshold = 0.8;
  static constexpr long long kNgram = 5;
  static constexpr long long kNumPerm = 112;
  static constexpr long long kBands = 14;
  static constexpr long long kSeed = 0;
  static constexpr long long kMaxMembers = 32;  // representatives per LSH bucket (index) / K (union-find)
};

// Empty when the parameters are valid; otherwise what is wrong, naming the Python argument and its valid range.
// `reps_name` names the last parameter: "max_reps" (MinHashIndex) or "max_members" (union-find).
inline std::string minhash_param_error(double threshold, long long ngram, long long num_perm, long long bands,
                                       long long max_reps, const char* reps_name = "max_reps") {
  if (!(threshold > 0.0 && threshold <= 1.0)) return "threshold must be in (0, 1], got " + std::to_string(threshold);
  if (ngram < 1 || ngram > kMaxNgram)
    return "ngram must be an int in [1, " + std::to_string(kMaxNgram) + "], got " + std::to_string(ngram);
  if (num_perm < 1 || num_perm > kMaxNumPerm)
    return "num_perm must be an int in [1, " + std::to_string(kMaxNumPerm) + "], got " + std::to_string(num_perm);
  if (bands < 1 || bands > num_perm)
    return "bands must be an int in [1, num_perm=" + std::to_string(num_perm) + "], got " + std::to_string(bands);
  if (num_perm % bands != 0)
    return "bands must divide num_perm (rows per band = num_perm / bands): num_perm=" + std::to_string(num_perm) +
           " is not divisible by bands=" + std::to_string(bands);
  if (max_reps < 1 || max_reps > kMaxReps)
    return std::string(reps_name) + " must be an int in [1, " + std::to_string(kMaxReps) + "], got " +
           std::to_string(max_reps);
  return "";
}

// A borrowed view of a str's code units (`kind` 1, 2 or 4 bytes per unit).
struct TextView {
  const void* data;
  std::size_t length;  // code units
  int kind;
};

// Words of the normalised text: `buf[0, size)` holds them UTF-8 encoded, separated by single
// spaces; word k < words spans bytes [starts[k], ends[k]). The vectors only grow (scratch reused
// across texts), so their sizes are not the counts.
struct NormalizedText {
  std::vector<unsigned char> buf;
  std::size_t size = 0;
  std::vector<std::uint32_t> starts;
  std::vector<std::uint32_t> ends;
  std::size_t words = 0;
};

// Which SIMD implementation computes signatures: kAuto picks the best the CPU supports.
enum class Isa { kAuto = 0, kScalar = 1, kAvx2 = 2, kAvx512 = 3 };
// The implementation kAuto resolves to on this CPU.
Isa best_isa();
const char* isa_name(Isa isa);
// Whether `isa` can run on this CPU (kScalar and kAuto always can).
bool isa_supported(Isa isa);

// Normalise `text` into `out`. Never fails: lone surrogates are word separators. The word spans
// (not the bytes between them) are the result; kAvx2/kAvx512 use a SIMD path for ASCII text.
void normalize_text(const TextView& text, NormalizedText& out, Isa isa = Isa::kAuto);

// The 32-bit shingle hashes of a normalised text (empty for a text with no word); `word_hashes` is
// scratch. See the header comment for the definition.
void shingle_hashes(const NormalizedText& norm, std::size_t ngram, std::uint64_t seed,
                    std::vector<std::uint64_t>& word_hashes, std::vector<std::uint32_t>& out);

// The permutation parameters for `num_perm` slots and `seed`, split in 32-bit halves for SIMD.
struct HashFamily {
  std::uint64_t seed = 0;
  std::vector<std::uint32_t> a_lo, a_hi, b_lo, b_hi;
  HashFamily() = default;
  HashFamily(std::size_t num_perm, std::uint64_t seed);
  std::size_t size() const { return a_lo.size(); }
};

// Per-thread scratch buffers for `compute_signature`.
struct SignatureScratch {
  NormalizedText norm;
  std::vector<std::uint64_t> word_hashes;
  std::vector<std::uint32_t> hashes;
};

// Signature of `text` into `sig` (family.size() values). Returns false for an empty text (no word).
bool compute_signature(const TextView& text, std::size_t ngram, const HashFamily& family, Isa isa,
                       SignatureScratch& scratch, std::uint32_t* sig);

// Number of equal slots of two signatures of length n.
std::size_t equal_slots(const std::uint32_t* a, const std::uint32_t* b, std::size_t n);

// Smallest number of equal slots (of num_perm) whose fraction reaches `threshold`: the verification bar.
std::uint32_t min_equal_slots(double threshold, std::uint32_t num_perm);

// The `bands` 64-bit LSH bucket keys of a signature (bands * rows slots), never 0.
void compute_band_keys(const std::uint32_t* sig, std::uint32_t bands, std::uint32_t rows, std::uint64_t seed,
                       std::uint64_t* keys);

// A file that cannot be loaded as an index (the message names the file and the problem).
class IndexFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Counters for one `MinHashIndex::add` call.
struct AddStats {
  std::uint64_t candidate_pairs = 0;  // (new document, stored representative) pairs compared
  std::uint64_t verified_pairs = 0;   // of which the estimated Jaccard reached the threshold
  std::uint64_t empty_documents = 0;  // documents with no word
  std::uint64_t offset = 0;           // global index of the batch's first document
  std::uint64_t total_docs = 0;       // documents in the index after the call
  std::uint64_t total_clusters = 0;   // clusters (kept documents) after the call
};

// Counters for one `cluster_union_find` call.
struct UnionFindStats {
  std::uint64_t candidate_pairs = 0;    // document pairs compared slot by slot
  std::uint64_t verified_pairs = 0;     // of which the estimated Jaccard reached the threshold
  std::uint64_t components_merged = 0;  // unions that joined two different sets
  std::uint64_t empty_documents = 0;    // documents with no word
  std::uint64_t clusters = 0;           // connected components (kept documents)
};

// One-shot union-find MinHash clustering of `n` texts (the same signatures and band keys as
// MinHashIndex). Documents are bucketed in index order; every bucket stores its first `max_members`
// documents (lowest indices), and each document is compared with the stored members of each of its
// buckets, skipping a member already in its set (the pair would connect nothing new) or already
// compared with it in another band. Pairs whose estimated Jaccard reaches `threshold` are merged
// (union by minimum index, path halving). clusters_out[i] = lowest index of i's connected component.
//
// Guarantee: the clusters are exactly the connected components of the graph whose edges are the
// verified candidate pairs (sharing a band bucket, estimated Jaccard >= threshold) with at least one
// document among the first `max_members` documents of a bucket they share. In particular they equal
// the components of ALL verified candidate pairs when no bucket holds more than max_members + 1
// documents. Empty documents (no word) are their own cluster. Signatures are computed on `threads`
// threads; the union pass is sequential in document order, so the result and stats do not depend on
// `threads`. Parameters must be valid (as for MinHashIndex; max_members >= 1). Throws
// std::length_error for more than MinHashIndex::kMaxDocs texts.
UnionFindStats cluster_union_find(const TextView* texts, std::size_t n, double threshold, std::uint32_t ngram,
                                  std::uint32_t num_perm, std::uint32_t bands, std::uint64_t seed,
                                  std::uint32_t max_members, std::size_t threads, Isa isa, std::int64_t* clusters_out);

// Incremental MinHash-LSH index over documents numbered 0, 1, 2, ... in insertion order.
//
// Each document is processed in order: its `bands` band keys (XXH64 of the band's rows) are looked
// up; every stored representative in those buckets whose cluster is lower than the best found so
// far is compared slot by slot, and the document joins the lowest cluster among the representatives
// whose estimated Jaccard (equal slots / num_perm) reaches `threshold`; with none it starts its own
// cluster (its own index: kept). It is then stored as a representative in every bucket that has no
// representative of its cluster yet (at most `max_reps` per bucket). Clusters are never merged
// afterwards, so a keep decision is final when it is made and any split of the documents into
// batches gives the same result. Empty documents are their own cluster and never stored in buckets.
//
// Thread-safety: `add`, `save` and readers lock an internal mutex.
class MinHashIndex {
 public:
  static constexpr std::uint32_t kFormatVersion = 1;
  static constexpr std::uint32_t kDefaultMaxReps = MinHashDefaults::kMaxMembers;
  static constexpr std::size_t kChunkDocs = 2048;  // signatures are stored in chunks of this many docs
  static constexpr std::uint64_t kMaxDocs = 0xFFFFFFFEULL;

  // Parameters must be valid (checked by the caller): 1 <= bands <= num_perm, num_perm % bands == 0,
  // 0 < threshold <= 1, ngram >= 1.
  MinHashIndex(double threshold, std::uint32_t ngram, std::uint32_t num_perm, std::uint32_t bands, std::uint64_t seed,
               std::uint32_t max_reps = kDefaultMaxReps);

  // Add `n` texts; cluster id (global document index of the cluster's first document) of each into
  // `clusters_out` (n values). `threads` >= 1 workers compute signatures. Throws std::length_error
  // past kMaxDocs documents (before adding any).
  AddStats add(const TextView* texts, std::size_t n, std::size_t threads, Isa isa, std::int64_t* clusters_out);

  void save(const std::string& path) const;                            // throws std::runtime_error on I/O errors
  static std::unique_ptr<MinHashIndex> load(const std::string& path);  // throws IndexFileError

  std::uint64_t num_docs() const;
  std::uint64_t num_clusters() const;  // kept documents so far
  std::uint64_t memory_bytes() const;  // bytes held by signatures, clusters, buckets and batch scratch
  std::uint64_t bucket_entries() const;
  double threshold() const { return threshold_; }
  std::uint32_t ngram() const { return ngram_; }
  std::uint32_t num_perm() const { return num_perm_; }
  std::uint32_t bands() const { return bands_; }
  std::uint64_t seed() const { return seed_; }
  std::uint32_t max_reps() const { return max_reps_; }
  // Copies of the stored signatures (num_docs x num_perm, row-major) and cluster ids.
  std::vector<std::uint32_t> signatures() const;
  std::vector<std::uint32_t> clusters() const;

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFu;
  struct Slot {
    std::uint64_t key;    // 0 = empty
    std::uint32_t head;   // first node, kNone if none
    std::uint32_t count;  // representatives in this bucket
  };
  struct Node {
    std::uint32_t doc;
    std::uint32_t next;  // kNone ends the list
  };

  std::uint32_t* sig_of(std::uint64_t doc) { return chunks_[doc / kChunkDocs].get() + (doc % kChunkDocs) * num_perm_; }
  const std::uint32_t* sig_of(std::uint64_t doc) const {
    return chunks_[doc / kChunkDocs].get() + (doc % kChunkDocs) * num_perm_;
  }
  void reserve_docs(std::uint64_t total);
  void grow_table_for(std::uint64_t extra_entries);
  std::size_t find_slot(std::uint64_t key) const;  // slot holding key, or the empty slot to use
  void band_keys(const std::uint32_t* sig, std::uint64_t* keys) const;
  void insert_one(std::uint32_t doc, bool empty, const std::uint64_t* keys, AddStats& stats,
                  std::vector<std::uint32_t>& compared);

  double threshold_;
  std::uint32_t ngram_, num_perm_, bands_, rows_, max_reps_;
  std::uint64_t seed_;
  std::uint32_t need_equal_;  // smallest equal-slot count that passes verification
  HashFamily family_;

  std::vector<std::unique_ptr<std::uint32_t[]>> chunks_;
  std::vector<std::uint32_t> cluster_;
  std::uint64_t num_clusters_ = 0;
  std::vector<Slot> slots_;  // open addressing, power-of-two capacity (or 0)
  std::uint64_t used_slots_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::size_t> where_;           // slot of each band key of the document being inserted
  std::vector<std::uint64_t> keys_scratch_;  // band keys of the batch being added
  std::vector<std::uint8_t> empty_scratch_;  // 1 for its documents with no word

  mutable std::mutex mutex_;
};

}  // namespace dedup
}  // namespace bmf
