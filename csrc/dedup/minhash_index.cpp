// MinHashIndex: the incremental LSH index (bucket table, greedy insertion of representatives, batched
// add). Save / load are in minhash_io.cpp. See minhash.h for the contract.
#include "dedup/minhash.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "dedup/minhash_internal.h"
#include "dedup/minhash_pipeline.h"

namespace bmf {
namespace dedup {

using detail::reserve_geometric;
using detail::run_pipelined;

MinHashIndex::MinHashIndex(double threshold, std::uint32_t ngram, std::uint32_t num_perm, std::uint32_t bands,
                           std::uint64_t seed, std::uint32_t max_reps)
    : threshold_(threshold),
      ngram_(ngram),
      num_perm_(num_perm),
      bands_(bands),
      rows_(num_perm / bands),
      max_reps_(max_reps),
      seed_(seed),
      family_(num_perm, seed) {
  need_equal_ = min_equal_slots(threshold, num_perm);
}

std::uint64_t MinHashIndex::num_docs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cluster_.size();
}

std::uint64_t MinHashIndex::num_clusters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return num_clusters_;
}

std::uint64_t MinHashIndex::bucket_entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return nodes_.size();
}

std::uint64_t MinHashIndex::memory_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return chunks_.size() * kChunkDocs * num_perm_ * sizeof(std::uint32_t) + cluster_.capacity() * sizeof(std::uint32_t) +
         slots_.capacity() * sizeof(Slot) + nodes_.capacity() * sizeof(Node) +
         keys_scratch_.capacity() * sizeof(std::uint64_t) + empty_scratch_.capacity();
}

std::vector<std::uint32_t> MinHashIndex::signatures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::uint32_t> out(cluster_.size() * num_perm_);
  for (std::uint64_t d = 0; d < cluster_.size(); ++d) std::memcpy(&out[d * num_perm_], sig_of(d), num_perm_ * 4);
  return out;
}

std::vector<std::uint32_t> MinHashIndex::clusters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cluster_;
}

void MinHashIndex::reserve_docs(std::uint64_t total) {
  while (chunks_.size() * kChunkDocs < total) {
    chunks_.emplace_back(new std::uint32_t[kChunkDocs * num_perm_]);
  }
}

std::size_t MinHashIndex::find_slot(std::uint64_t key) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = static_cast<std::size_t>(key) & mask;
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
  return i;
}

void MinHashIndex::grow_table_for(std::uint64_t extra) {
  // Linear probing at a load factor of at most 0.7.
  const std::uint64_t want = used_slots_ + extra;
  if (!slots_.empty() && want * 10 <= slots_.size() * 7) return;
  std::size_t cap = slots_.empty() ? 1024 : slots_.size();
  while (want * 10 > cap * 7) cap *= 2;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{0, kNone, 0});
  for (const Slot& s : old) {
    if (s.key != 0) slots_[find_slot(s.key)] = s;
  }
}

void MinHashIndex::band_keys(const std::uint32_t* sig, std::uint64_t* keys) const {
  compute_band_keys(sig, bands_, rows_, seed_, keys);
}

void MinHashIndex::insert_one(std::uint32_t doc, bool empty, const std::uint64_t* keys, AddStats& stats,
                              std::vector<std::uint32_t>& compared) {
  if (empty) {
    cluster_.push_back(doc);
    ++num_clusters_;
    ++stats.empty_documents;
    return;
  }
  grow_table_for(bands_);
  const std::uint32_t* sig = sig_of(doc);
  std::uint32_t best = kNone;
  compared.clear();
  std::size_t* const where = where_.data();
  for (std::uint32_t b = 0; b < bands_; ++b) {
    where[b] = find_slot(keys[b]);
    const Slot& slot = slots_[where[b]];
    if (slot.key == 0) continue;
    for (std::uint32_t n = slot.head; n != kNone; n = nodes_[n].next) {
      const std::uint32_t r = nodes_[n].doc;
      const std::uint32_t c = cluster_[r];
      if (c >= best) continue;  // cannot lower the cluster found so far
      if (std::find(compared.begin(), compared.end(), r) != compared.end()) continue;
      compared.push_back(r);
      ++stats.candidate_pairs;
      if (equal_slots(sig, sig_of(r), num_perm_) >= need_equal_) {
        ++stats.verified_pairs;
        best = c;
      }
    }
  }
  const std::uint32_t mine = best == kNone ? doc : best;
  cluster_.push_back(mine);
  if (best == kNone) ++num_clusters_;
  for (std::uint32_t b = 0; b < bands_; ++b) {
    // The slot found above, unless an earlier band of this document has just taken that empty slot.
    std::size_t at = where[b];
    if (slots_[at].key != keys[b] && slots_[at].key != 0) at = find_slot(keys[b]);
    Slot& slot = slots_[at];
    if (slot.key == 0) {
      slot.key = keys[b];
      slot.head = static_cast<std::uint32_t>(nodes_.size());
      slot.count = 1;
      nodes_.push_back(Node{doc, kNone});
      ++used_slots_;
      continue;
    }
    if (slot.count >= max_reps_) continue;
    bool represented = false;
    for (std::uint32_t n = slot.head; n != kNone; n = nodes_[n].next) {
      if (cluster_[nodes_[n].doc] == mine) {
        represented = true;
        break;
      }
    }
    if (represented) continue;
    nodes_.push_back(Node{doc, slot.head});
    slot.head = static_cast<std::uint32_t>(nodes_.size() - 1);
    ++slot.count;
  }
}

AddStats MinHashIndex::add(const TextView* texts, std::size_t n, std::size_t threads, Isa isa,
                           std::int64_t* clusters_out) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uint64_t n0 = cluster_.size();
  if (n0 + n > kMaxDocs) {
    throw std::length_error("MinHashIndex holds at most " + std::to_string(kMaxDocs) + " documents; it has " +
                            std::to_string(n0) + " and " + std::to_string(n) + " more were added");
  }
  AddStats stats;
  stats.offset = stats.total_docs = n0;
  stats.total_clusters = num_clusters_;
  if (n == 0) return stats;
  reserve_docs(n0 + n);
  reserve_geometric(cluster_, n0 + n);
  // Per-batch scratch, kept across calls (no fresh pages for every small batch).
  if (keys_scratch_.size() < n * bands_) keys_scratch_.resize(n * bands_);
  if (empty_scratch_.size() < n) empty_scratch_.resize(n);
  std::uint64_t* const keys = keys_scratch_.data();
  std::uint8_t* const empty = empty_scratch_.data();

  // Signatures and band keys are computed by all threads (each document on its own: deterministic);
  // the calling thread inserts the documents in order (bucketing and verification are sequential,
  // hence deterministic).
  auto compute = [&](std::size_t i, SignatureScratch& scratch) {
    std::uint32_t* sig = sig_of(n0 + i);
    const bool has_words = compute_signature(texts[i], ngram_, family_, isa, scratch, sig);
    empty[i] = has_words ? 0 : 1;
    if (has_words) band_keys(sig, &keys[i * bands_]);
  };
  auto setup = [&]() {
    where_.resize(bands_);
    // Room for every document of the batch in every band (the most it can need), so the buckets are
    // not rehashed / reallocated while inserting; done while the workers start on the signatures.
    grow_table_for(static_cast<std::uint64_t>(n) * bands_);
    reserve_geometric(nodes_, nodes_.size() + n * bands_);
  };
  std::vector<std::uint32_t> compared;
  constexpr std::size_t kAhead = 8;  // documents whose buckets are prefetched ahead of use
  std::size_t i = 0;
  auto consume = [&](std::size_t begin, std::size_t end, std::size_t ready_end) {
    for (i = begin; i < end; ++i) {
      if (i + kAhead < ready_end && !empty[i + kAhead] && !slots_.empty()) {
        const std::size_t mask = slots_.size() - 1;
        const std::uint64_t* ahead = &keys[(i + kAhead) * bands_];
        for (std::uint32_t b = 0; b < bands_; ++b) BMF_PREFETCH(&slots_[static_cast<std::size_t>(ahead[b]) & mask]);
      }
      const std::uint32_t doc = static_cast<std::uint32_t>(n0 + i);
      insert_one(doc, empty[i] != 0, &keys[i * bands_], stats, compared);
      clusters_out[i] = cluster_[doc];
    }
  };
  try {
    run_pipelined(n, threads, compute, setup, consume);
  } catch (...) {
    // Out of memory while growing the buckets, or a failed signature: the processed prefix stays
    // added and consistent.
    cluster_.resize(n0 + i);
    throw;
  }
  stats.total_docs = cluster_.size();
  stats.total_clusters = num_clusters_;
  return stats;
}

}  // namespace dedup
}  // namespace bmf
