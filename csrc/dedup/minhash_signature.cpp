// MinHash signatures: the permutation family, the scalar / AVX2 / AVX-512 kernels and their run-time
// dispatch (target attributes + CPU detection), slot comparison and LSH band keys. See minhash.h.
#include "dedup/minhash.h"

#include <algorithm>
#include <cmath>

#include "dedup/minhash_internal.h"

namespace bmf {
namespace dedup {

using detail::mix64;

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// sig[i] = min(sig[i], ((a_i * x + b_i) mod 2^64) >> 32) over the hashes, for slots [begin, end).
void minhash_scalar(const HashFamily& f, std::size_t begin, std::size_t end, const std::uint32_t* xs, std::size_t count,
                    std::uint32_t* sig) {
  for (std::size_t i = begin; i < end; ++i) {
    const std::uint64_t a = (static_cast<std::uint64_t>(f.a_hi[i]) << 32) | f.a_lo[i];
    const std::uint64_t b = (static_cast<std::uint64_t>(f.b_hi[i]) << 32) | f.b_lo[i];
    std::uint32_t m = sig[i];
    for (std::size_t s = 0; s < count; ++s) {
      const std::uint32_t v = static_cast<std::uint32_t>((a * xs[s] + b) >> 32);
      m = v < m ? v : m;
    }
    sig[i] = m;
  }
}

#if BMF_MINHASH_X86
// (a*x + b) >> 32 mod 2^32 = hi32(a_lo*x + b_lo) + a_hi*x + b_hi (mod 2^32); a_lo*x + b_lo < 2^64.
// Both kernels handle the full vectors of slots [begin, end) and return where they stopped.
__attribute__((target("avx2"))) std::size_t minhash_avx2(const HashFamily& f, std::size_t begin, std::size_t end,
                                                         const std::uint32_t* xs, std::size_t count,
                                                         std::uint32_t* sig) {
  const __m256i low_mask = _mm256_set1_epi64x(0xFFFFFFFFLL);
  std::size_t j = begin;
  for (; j + 8 <= end; j += 8) {
    const __m256i alo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.a_lo.data() + j));
    const __m256i alo_odd = _mm256_srli_epi64(alo, 32);
    const __m256i blo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.b_lo.data() + j));
    const __m256i blo_even = _mm256_and_si256(blo, low_mask);
    const __m256i blo_odd = _mm256_srli_epi64(blo, 32);
    const __m256i ahi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.a_hi.data() + j));
    const __m256i bhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(f.b_hi.data() + j));
    __m256i acc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sig + j));
    for (std::size_t s = 0; s < count; ++s) {
      const __m256i x = _mm256_set1_epi32(static_cast<int>(xs[s]));
      const __m256i te = _mm256_add_epi64(_mm256_mul_epu32(alo, x), blo_even);
      const __m256i to = _mm256_add_epi64(_mm256_mul_epu32(alo_odd, x), blo_odd);
      const __m256i hi = _mm256_blend_epi32(_mm256_srli_epi64(te, 32), to, 0xAA);
      const __m256i v = _mm256_add_epi32(_mm256_add_epi32(hi, bhi), _mm256_mullo_epi32(ahi, x));
      acc = _mm256_min_epu32(acc, v);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sig + j), acc);
  }
  return j;
}

__attribute__((target("avx512f"))) std::size_t minhash_avx512(const HashFamily& f, std::size_t begin, std::size_t end,
                                                              const std::uint32_t* xs, std::size_t count,
                                                              std::uint32_t* sig) {
  const __m512i low_mask = _mm512_set1_epi64(0xFFFFFFFFLL);
  std::size_t j = begin;
  for (; j + 16 <= end; j += 16) {
    const __m512i alo = _mm512_loadu_si512(f.a_lo.data() + j);
    const __m512i alo_odd = _mm512_srli_epi64(alo, 32);
    const __m512i blo = _mm512_loadu_si512(f.b_lo.data() + j);
    const __m512i blo_even = _mm512_and_si512(blo, low_mask);
    const __m512i blo_odd = _mm512_srli_epi64(blo, 32);
    const __m512i ahi = _mm512_loadu_si512(f.a_hi.data() + j);
    const __m512i bhi = _mm512_loadu_si512(f.b_hi.data() + j);
    __m512i acc = _mm512_loadu_si512(sig + j);
    for (std::size_t s = 0; s < count; ++s) {
      const __m512i x = _mm512_set1_epi32(static_cast<int>(xs[s]));
      const __m512i te = _mm512_add_epi64(_mm512_mul_epu32(alo, x), blo_even);
      const __m512i to = _mm512_add_epi64(_mm512_mul_epu32(alo_odd, x), blo_odd);
      const __m512i hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(te, 32), to);
      const __m512i v = _mm512_add_epi32(_mm512_add_epi32(hi, bhi), _mm512_mullo_epi32(ahi, x));
      acc = _mm512_min_epu32(acc, v);
    }
    _mm512_storeu_si512(sig + j, acc);
  }
  return j;
}

bool cpu_has(Isa isa) {
  __builtin_cpu_init();
  if (isa == Isa::kAvx2) return __builtin_cpu_supports("avx2");
  if (isa == Isa::kAvx512) return __builtin_cpu_supports("avx512f");
  return true;
}
#else
bool cpu_has(Isa isa) { return isa == Isa::kScalar || isa == Isa::kAuto; }
#endif

Isa detect_best() {
  if (cpu_has(Isa::kAvx512)) return Isa::kAvx512;
  if (cpu_has(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

void apply_family(const HashFamily& f, Isa isa, const std::uint32_t* xs, std::size_t count, std::uint32_t* sig) {
  const std::size_t num_perm = f.size();
  std::size_t done = 0;
#if BMF_MINHASH_X86
  if (isa == Isa::kAvx512) done = minhash_avx512(f, done, num_perm, xs, count, sig);
  if (isa == Isa::kAvx512 || isa == Isa::kAvx2) done = minhash_avx2(f, done, num_perm, xs, count, sig);
#else
  (void)isa;
#endif
  minhash_scalar(f, done, num_perm, xs, count, sig);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

Isa best_isa() {
  static const Isa best = detect_best();
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    default: return "auto";
  }
}

bool isa_supported(Isa isa) { return cpu_has(isa); }

HashFamily::HashFamily(std::size_t num_perm, std::uint64_t seed_) : seed(seed_) {
  a_lo.resize(num_perm);
  a_hi.resize(num_perm);
  b_lo.resize(num_perm);
  b_hi.resize(num_perm);
  std::uint64_t state = seed_;
  for (std::size_t i = 0; i < num_perm; ++i) {
    const std::uint64_t a = splitmix64(state);
    const std::uint64_t b = splitmix64(state);
    a_lo[i] = static_cast<std::uint32_t>(a);
    a_hi[i] = static_cast<std::uint32_t>(a >> 32);
    b_lo[i] = static_cast<std::uint32_t>(b);
    b_hi[i] = static_cast<std::uint32_t>(b >> 32);
  }
}

bool compute_signature(const TextView& text, std::size_t ngram, const HashFamily& family, Isa isa,
                       SignatureScratch& scratch, std::uint32_t* sig) {
  const std::size_t num_perm = family.size();
  std::fill(sig, sig + num_perm, 0xFFFFFFFFu);
  if (isa == Isa::kAuto) isa = best_isa();
  normalize_text(text, scratch.norm, isa);
  if (scratch.norm.words == 0) return false;
  shingle_hashes(scratch.norm, ngram, family.seed, scratch.word_hashes, scratch.hashes);
  apply_family(family, isa, scratch.hashes.data(), scratch.hashes.size(), sig);
  return true;
}

std::size_t equal_slots(const std::uint32_t* a, const std::uint32_t* b, std::size_t n) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) same += a[i] == b[i];
  return same;
}

std::uint32_t min_equal_slots(double threshold, std::uint32_t num_perm) {
  // Smallest integer k with k / num_perm >= threshold (a tiny epsilon absorbs rounding of e.g. 0.8*112).
  const double need = std::ceil(threshold * num_perm - 1e-9);
  return static_cast<std::uint32_t>(std::max(1.0, std::min(need, static_cast<double>(num_perm))));
}

void compute_band_keys(const std::uint32_t* sig, std::uint32_t bands, std::uint32_t rows, std::uint64_t seed,
                       std::uint64_t* keys) {
  // The rows are min-hash values (already uniform): a multiply-rotate chain over 64-bit pairs of them,
  // finished with fmix64, is a good enough 64-bit bucket key (and much cheaper than XXH64).
  for (std::uint32_t b = 0; b < bands; ++b) {
    const std::uint32_t* row = sig + static_cast<std::size_t>(b) * rows;
    std::uint64_t h = seed ^ (0x9E3779B97F4A7C15ULL * (b + 1));
    std::uint32_t r = 0;
    for (; r + 2 <= rows; r += 2) {
      const std::uint64_t w = row[r] | (static_cast<std::uint64_t>(row[r + 1]) << 32);
      h = (h ^ w) * 0x9FB21C651E98DF25ULL;
      h = (h << 29) | (h >> 35);
    }
    if (r < rows) h = ((h ^ row[r]) * 0x9FB21C651E98DF25ULL);
    const std::uint64_t k = mix64(h ^ rows);
    keys[b] = k == 0 ? 1 : k;
  }
}

}  // namespace dedup
}  // namespace bmf
