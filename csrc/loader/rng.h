// Counter-based randomness shared bit for bit with the Python reference
// (bigmodel_fast/data/loader_reference.py): every random choice of the loader is `mix(key ^ counter)` for a key
// derived from (seed, epoch, sample) and a purpose constant, so a batch is a pure function of its index and the
// result never depends on the number of threads or on the order in which batches are built.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace bmf {
namespace loader {

// splitmix64's output function (Steele, Lea, Flood 2014), applied to one 64-bit word.
inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Purposes: distinct constants xor-ed into an example key before mixing (keep in sync with the reference).
enum Purpose : std::uint64_t {
  kPermutation = 1,  // epoch permutation round keys
  kCut = 2,          // A/B cut point of an MLM chunk
  kNsp = 3,          // "random B" coin
  kOther = 4,        // which other chunk supplies a random B (per attempt)
  kBStart = 5,       // start of the random B span inside its document
  kSelect = 6,       // masking: which positions are selected (16-bit uniforms, four per hash)
  kRoll = 7,         // masking: 80/10/10 roll and random replacement id of a selected position
};

// Key of one sample: chain the seed, the epoch and the sample (window / chunk) index through mix().
inline std::uint64_t sample_key(std::uint64_t seed, std::uint64_t epoch, std::uint64_t item) {
  return mix(mix(mix(seed) ^ epoch) ^ item);
}

inline std::uint64_t purpose_key(std::uint64_t key, Purpose p) { return mix(key ^ static_cast<std::uint64_t>(p)); }

// A seeded bijection of [0, n): a 4-round balanced Feistel network over 2 * half_bits bits (the smallest even
// width covering n) with cycle walking, keyed by (seed, epoch). O(1) memory, so an epoch never materialises a
// permutation array; a few mixes per call.
class EpochPermutation {
 public:
  EpochPermutation(std::uint64_t seed, std::uint64_t epoch, std::uint64_t n) : n_(n) {
    int bits = 0;
    while (bits < 64 && (std::uint64_t{1} << bits) < n) ++bits;
    half_ = bits <= 2 ? 1 : (bits + 1) / 2;
    mask_ = (std::uint64_t{1} << half_) - 1;
    const std::uint64_t k = purpose_key(mix(mix(seed) ^ epoch), kPermutation);
    for (std::uint64_t r = 0; r < 4; ++r) round_[r] = mix(k ^ r);
  }

  // x must lie in [0, n): the Feistel network only permutes the low 2 * half_ bits, so cycle walking from a larger
  // x would never end.
  std::uint64_t operator()(std::uint64_t x) const {
    if (x >= n_) throw std::out_of_range("EpochPermutation: slot " + std::to_string(x) + " >= n=" + std::to_string(n_));
    do {
      x = feistel(x);
    } while (x >= n_);
    return x;
  }

 private:
  std::uint64_t feistel(std::uint64_t x) const {
    std::uint64_t left = x >> half_, right = x & mask_;
    for (int r = 0; r < 4; ++r) {
      const std::uint64_t next = left ^ (mix(round_[r] ^ right) & mask_);
      left = right;
      right = next;
    }
    return (left << half_) | right;
  }

  std::uint64_t n_;
  int half_;
  std::uint64_t mask_;
  std::uint64_t round_[4];
};

}  // namespace loader
}  // namespace bmf
