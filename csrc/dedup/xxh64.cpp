// XXH64 implementation. See xxh64.h for the contract.
#include "dedup/xxh64.h"

#include <cstring>

namespace bmf {
namespace dedup {
namespace {

constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;
constexpr std::uint64_t kPrime4 = 0x85EBCA77C2B2AE63ULL;
constexpr std::uint64_t kPrime5 = 0x27D4EB2F165667C5ULL;

inline std::uint64_t rotl(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }

// Unaligned little-endian loads (memcpy compiles to a single mov on x86/ARM).
inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

inline std::uint32_t load_le32(const unsigned char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}

// One accumulator step: mix a 64-bit lane into `acc`.
inline std::uint64_t round_step(std::uint64_t acc, std::uint64_t lane) noexcept {
  acc += lane * kPrime2;
  acc = rotl(acc, 31);
  return acc * kPrime1;
}

// Fold one of the four stripe accumulators into the converged hash.
inline std::uint64_t merge_accumulator(std::uint64_t h, std::uint64_t acc) noexcept {
  h ^= round_step(0, acc);
  return h * kPrime1 + kPrime4;
}

inline std::uint64_t avalanche(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

}  // namespace

std::uint64_t xxh64(const void* data, std::size_t len, std::uint64_t seed) noexcept {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + len;
  std::uint64_t h;

  if (len >= 32) {
    // Four independent lanes over 32-byte stripes.
    std::uint64_t a1 = seed + kPrime1 + kPrime2;
    std::uint64_t a2 = seed + kPrime2;
    std::uint64_t a3 = seed;
    std::uint64_t a4 = seed - kPrime1;
    const unsigned char* const last_stripe = end - 32;
    do {
      a1 = round_step(a1, load_le64(p));
      a2 = round_step(a2, load_le64(p + 8));
      a3 = round_step(a3, load_le64(p + 16));
      a4 = round_step(a4, load_le64(p + 24));
      p += 32;
    } while (p <= last_stripe);
    h = rotl(a1, 1) + rotl(a2, 7) + rotl(a3, 12) + rotl(a4, 18);
    h = merge_accumulator(h, a1);
    h = merge_accumulator(h, a2);
    h = merge_accumulator(h, a3);
    h = merge_accumulator(h, a4);
  } else {
    h = seed + kPrime5;
  }

  h += static_cast<std::uint64_t>(len);

  // Tail: at most 31 bytes left.
  while (end - p >= 8) {
    h ^= round_step(0, load_le64(p));
    h = rotl(h, 27) * kPrime1 + kPrime4;
    p += 8;
  }
  if (end - p >= 4) {
    h ^= static_cast<std::uint64_t>(load_le32(p)) * kPrime1;
    h = rotl(h, 23) * kPrime2 + kPrime3;
    p += 4;
  }
  while (p < end) {
    h ^= static_cast<std::uint64_t>(*p) * kPrime5;
    h = rotl(h, 11) * kPrime1;
    ++p;
  }
  return avalanche(h);
}

}  // namespace dedup
}  // namespace bmf
