// Internals shared by the minhash_*.cpp files (not an API: see minhash.h for that): the x86 SIMD switch
// (the AVX2 / AVX-512 kernels are compiled with per-function target attributes and chosen at run time,
// so no file needs special compile flags), a prefetch hint, and the 64-bit finaliser used by the word,
// shingle and band-key hashes.
#pragma once

#include <cstdint>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define BMF_MINHASH_X86 1
#include <immintrin.h>
#else
#define BMF_MINHASH_X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BMF_PREFETCH(p) __builtin_prefetch(p)
#else
#define BMF_PREFETCH(p) ((void)(p))
#endif

namespace bmf {
namespace dedup {
namespace detail {

inline std::uint64_t mix64(std::uint64_t z) {  // MurmurHash3 fmix64
  z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDULL;
  z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53ULL;
  return z ^ (z >> 33);
}

}  // namespace detail
}  // namespace dedup
}  // namespace bmf
