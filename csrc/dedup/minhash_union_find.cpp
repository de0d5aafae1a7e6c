// One-shot union-find MinHash clustering (cluster_union_find). See minhash.h for the contract.
#include "dedup/minhash.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "dedup/minhash_internal.h"
#include "dedup/minhash_pipeline.h"

namespace bmf {
namespace dedup {

using detail::run_pipelined;

UnionFindStats cluster_union_find(const TextView* texts, std::size_t n, double threshold, std::uint32_t ngram,
                                  std::uint32_t num_perm, std::uint32_t bands, std::uint64_t seed,
                                  std::uint32_t max_members, std::size_t threads, Isa isa, std::int64_t* clusters_out) {
  constexpr std::uint32_t kNone = 0xFFFFFFFFu;
  if (n > MinHashIndex::kMaxDocs) {
    throw std::length_error("union-find MinHash clustering takes at most " + std::to_string(MinHashIndex::kMaxDocs) +
                            " documents, got " + std::to_string(n));
  }
  UnionFindStats stats;
  if (n == 0) return stats;
  const std::uint32_t rows = num_perm / bands;
  const std::uint32_t need = min_equal_slots(threshold, num_perm);
  const HashFamily family(num_perm, seed);
  std::unique_ptr<std::uint32_t[]> sigs(new std::uint32_t[n * num_perm]);  // (n, num_perm)
  std::unique_ptr<std::uint64_t[]> keys(new std::uint64_t[n * bands]);     // (n, bands)
  std::unique_ptr<std::uint8_t[]> empty(new std::uint8_t[n]);
  std::unique_ptr<std::uint32_t[]> parent(new std::uint32_t[n]);  // union-find forest; a root is its set's minimum
  std::unique_ptr<std::uint32_t[]> stamp(new std::uint32_t[n]);   // stamp[j] == i: pair (i, j) already compared

  struct Slot {
    std::uint64_t key;      // 0 = empty
    std::uint32_t head;     // first node (the most recently stored member), kNone if none
    std::uint16_t count;    // stored members (at most max_members: the bucket's first ones)
    std::uint16_t one_set;  // 1: all stored members are known to be in one set (sets only ever merge)
  };
  struct Node {
    std::uint32_t doc;
    std::uint32_t next;
  };
  std::vector<Slot> slots;
  std::vector<Node> nodes;
  std::size_t mask = 0;

  auto find = [&](std::uint32_t x) {
    while (parent[x] != x) {  // path halving
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };

  auto compute = [&](std::size_t i, SignatureScratch& scratch) {
    std::uint32_t* sig = &sigs[i * num_perm];
    const bool has_words = compute_signature(texts[i], ngram, family, isa, scratch, sig);
    empty[i] = has_words ? 0 : 1;
    if (has_words) compute_band_keys(sig, bands, rows, seed, &keys[i * bands]);
  };
  auto setup = [&]() {
    // Every document in every band at most: no rehashing, load factor <= 0.7 (as MinHashIndex).
    const std::uint64_t want = static_cast<std::uint64_t>(n) * bands;
    std::size_t cap = 1024;
    while (want * 10 > static_cast<std::uint64_t>(cap) * 7) cap *= 2;
    slots.assign(cap, Slot{0, kNone, 0, 0});
    mask = cap - 1;
    nodes.reserve(std::min<std::uint64_t>(want, static_cast<std::uint64_t>(n) * std::min(bands, max_members)));
  };
  constexpr std::size_t kAhead = 8;  // documents whose buckets are prefetched ahead of use
  auto consume = [&](std::size_t begin, std::size_t end, std::size_t ready_end) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::uint32_t doc = static_cast<std::uint32_t>(i);
      parent[doc] = doc;
      stamp[doc] = kNone;
      if (empty[i]) {  // its own cluster, never a candidate
        ++stats.empty_documents;
        continue;
      }
      if (i + kAhead < ready_end && !empty[i + kAhead]) {
        const std::uint64_t* ahead = &keys[(i + kAhead) * bands];
        for (std::uint32_t b = 0; b < bands; ++b) BMF_PREFETCH(&slots[static_cast<std::size_t>(ahead[b]) & mask]);
      }
      const std::uint32_t* sig = &sigs[i * num_perm];
      const std::uint64_t* my_keys = &keys[i * bands];
      std::uint32_t root = doc;  // find(doc), kept current as it merges
      for (std::uint32_t b = 0; b < bands; ++b) {
        const std::uint64_t key = my_keys[b];
        std::size_t at = static_cast<std::size_t>(key) & mask;
        while (slots[at].key != 0 && slots[at].key != key) at = (at + 1) & mask;
        Slot& slot = slots[at];
        if (slot.key == 0) {  // a new bucket: no candidate
          slot.key = key;
          slot.head = static_cast<std::uint32_t>(nodes.size());
          slot.count = 1;
          slot.one_set = 1;
          nodes.push_back(Node{doc, kNone});
          continue;
        }
        // Every stored member (the bucket's first `max_members` documents, all earlier than this one)
        // is compared unless it is already in this document's set (the pair would add no connection) or
        // was compared with it in an earlier band. A bucket whose members are all in this document's
        // set (e.g. exact copies) costs one find.
        bool all_in_set = true;  // every member ends up in this document's set
        if (slot.one_set && find(nodes[slot.head].doc) == root) {
          // nothing to compare
        } else {
          for (std::uint32_t nd = slot.head; nd != kNone; nd = nodes[nd].next) {
            const std::uint32_t j = nodes[nd].doc;
            const std::uint32_t rj = find(j);
            if (rj == root) continue;
            if (stamp[j] == doc) {
              all_in_set = false;
              continue;
            }
            stamp[j] = doc;
            ++stats.candidate_pairs;
            if (equal_slots(sig, &sigs[static_cast<std::size_t>(j) * num_perm], num_perm) >= need) {
              ++stats.verified_pairs;
              // Union by minimum index: the lower root stays the root. rj != root, so two sets join.
              ++stats.components_merged;
              if (rj < root) {
                parent[root] = rj;
                root = rj;
              } else {
                parent[rj] = root;
              }
            } else {
              all_in_set = false;
            }
          }
        }
        const bool stored = slot.count < max_members;
        // Members already in one set stay so; with this document stored too, only if it is in that set.
        if (all_in_set) {
          slot.one_set = 1;
        } else if (stored) {
          slot.one_set = 0;
        }
        if (stored) {
          nodes.push_back(Node{doc, slot.head});
          slot.head = static_cast<std::uint32_t>(nodes.size() - 1);
          ++slot.count;
        }
      }
    }
  };
  run_pipelined(n, threads, compute, setup, consume);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t r = find(static_cast<std::uint32_t>(i));
    clusters_out[i] = r;
    stats.clusters += r == i;
  }
  return stats;
}

}  // namespace dedup
}  // namespace bmf
