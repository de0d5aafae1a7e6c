// MinHash signatures and the incremental LSH index. See minhash.h for the contract.
#include "dedup/minhash.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
#include <system_error>
#include <thread>

#include "dedup/xxh64.h"

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
namespace {

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

enum CharClass : std::uint8_t {
  kSep = 0,   // ends a word (space, punctuation, symbol, emoji, control)
  kWord = 1,  // part of a word
  kIso = 2,   // a word of its own (scripts written without spaces)
  kSkip = 3,  // ignored entirely (zero-width characters, soft hyphen, variation selectors)
};

inline bool in(std::uint32_t c, std::uint32_t lo, std::uint32_t hi) { return c >= lo && c <= hi; }

// Lowercase mapping for the blocks listed in minhash.h (identity elsewhere). Matches Python's
// str.lower() for every character it changes except U+0130 (mapped to plain 'i').
std::uint32_t fold_case(std::uint32_t c) {
  if (c < 0x100) return (in(c, 0xC0, 0xDE) && c != 0xD7) ? c + 0x20 : c;
  if (c < 0x180) {  // Latin Extended-A
    if (c == 0x130) return 0x69;
    if (c == 0x178) return 0xFF;
    if (c < 0x138 || in(c, 0x14A, 0x177)) return (c % 2 == 0) ? c + 1 : c;
    if (in(c, 0x139, 0x148) || in(c, 0x179, 0x17E)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c < 0x250) {  // Latin Extended-B: the regular runs and the digraphs
    if (c == 0x1C4 || c == 0x1C5) return 0x1C6;
    if (c == 0x1C7 || c == 0x1C8) return 0x1C9;
    if (c == 0x1CA || c == 0x1CB) return 0x1CC;
    if (c == 0x1F1 || c == 0x1F2) return 0x1F3;
    if (c == 0x1F4) return 0x1F5;
    if (in(c, 0x1CD, 0x1DC)) return (c % 2 == 1) ? c + 1 : c;
    if (in(c, 0x1DE, 0x1EF) || in(c, 0x1F8, 0x21F) || in(c, 0x222, 0x233)) return (c % 2 == 0) ? c + 1 : c;
    return c;
  }
  if (c < 0x370) return c;
  if (c < 0x400) {  // Greek
    if (in(c, 0x391, 0x3A1) || in(c, 0x3A3, 0x3AB)) return c + 0x20;
    if (c == 0x386) return 0x3AC;
    if (in(c, 0x388, 0x38A)) return c + 0x25;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 0x3F;
    return c;
  }
  if (c < 0x530) {  // Cyrillic + supplement
    if (c < 0x410) return c + 0x50;
    if (c < 0x430) return c + 0x20;
    if (in(c, 0x460, 0x481) || in(c, 0x48A, 0x4BF) || in(c, 0x4D0, 0x52F)) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x4C0) return 0x4CF;
    if (in(c, 0x4C1, 0x4CE)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (in(c, 0x531, 0x556)) return c + 0x30;  // Armenian
  if (in(c, 0x10A0, 0x10C5) || c == 0x10C7 || c == 0x10CD) return c + 0x1C60;  // Georgian Asomtavruli
  if (in(c, 0x1C90, 0x1CBA) || in(c, 0x1CBD, 0x1CBF)) return c - 0xBC0;         // Georgian Mtavruli
  if (in(c, 0x1E00, 0x1EFF)) {  // Latin Extended Additional
    if (c == 0x1E9E) return 0xDF;
    if (c <= 0x1E95 || c >= 0x1EA0) return (c % 2 == 0) ? c + 1 : c;
    return c;
  }
  if (in(c, 0xFF21, 0xFF3A)) return c + 0x20;  // fullwidth Latin capitals
  return c;
}

// Class of a non-ASCII code point (ASCII goes through kAsciiClass).
CharClass classify_non_ascii(std::uint32_t c) {
  if (c < 0x100) {
    if (c == 0xAD) return kSkip;
    if (c < 0xC0) {
      switch (c) {
        case 0xAA: case 0xB2: case 0xB3: case 0xB5: case 0xB9: case 0xBA: case 0xBC: case 0xBD: case 0xBE:
          return kWord;
        default:
          return kSep;
      }
    }
    return (c == 0xD7 || c == 0xF7) ? kSep : kWord;
  }
  if (c < 0x2000) {
    if (c < 0x0E00) {
      switch (c) {  // punctuation of alphabetic scripts
        case 0x37E: case 0x387: case 0x589: case 0x58A: case 0x5BE: case 0x5C0: case 0x5C3: case 0x5C6:
        case 0x5F3: case 0x5F4: case 0x61B: case 0x61C: case 0x61D: case 0x61E: case 0x61F: case 0x6D4:
        case 0x964: case 0x965: case 0x970:
          return kSep;
        default:
          break;
      }
      if (in(c, 0x55A, 0x55F) || in(c, 0x600, 0x60F) || in(c, 0x66A, 0x66D)) return kSep;
      return kWord;
    }
    if (c < 0x0F00) {  // Thai, Lao
      if (c == 0xE3F || c == 0xE4F || c == 0xE5A || c == 0xE5B) return kSep;
      return kIso;
    }
    if (in(c, 0x1000, 0x109F)) return (c == 0x104A || c == 0x104B) ? kSep : kIso;  // Myanmar
    if (in(c, 0x1780, 0x17FF)) return in(c, 0x17D4, 0x17DA) ? kSep : kIso;       // Khmer
    if (c == 0x1680 || c == 0x180E) return kSep;
    if (in(c, 0x1360, 0x1368) || c == 0x10FB) return kSep;
    return kWord;
  }
  if (c < 0x3000) {
    if (c <= 0x206F) {  // General Punctuation: spaces, dashes, quotes, invisible operators
      if (in(c, 0x200B, 0x200D) || in(c, 0x2060, 0x2064)) return kSkip;
      return kSep;
    }
    if (c <= 0x209F) return kWord;  // superscripts and subscripts
    if (c <= 0x20FF) return kSep;   // currency, combining marks for symbols
    if (c <= 0x218F) return kWord;  // letterlike symbols, number forms
    if (c <= 0x245F) return kSep;   // arrows, maths, technical, control pictures
    if (c <= 0x24FF) return kWord;  // enclosed alphanumerics
    if (c <= 0x27FF) return kSep;   // box drawing, shapes, misc symbols, dingbats
    if (c <= 0x28FF) return kWord;  // braille
    if (c <= 0x2BFF) return kSep;   // arrows, maths, misc symbols
    if (c <= 0x2DFF) return kWord;  // Glagolitic, Latin Ext-C, Coptic, Georgian suppl., Tifinagh, ...
    if (c <= 0x2E7F) return kSep;   // supplemental punctuation
    if (c <= 0x2FDF) return kIso;   // CJK radicals, Kangxi radicals
    return kSep;                    // ideographic description characters
  }
  if (c < 0xA000) {
    if (c <= 0x303F) {  // CJK symbols and punctuation: a few are ideographic
      if (in(c, 0x3005, 0x3007) || in(c, 0x3021, 0x3029) || in(c, 0x3031, 0x3035) || in(c, 0x3038, 0x303C)) {
        return kIso;
      }
      return kSep;
    }
    if (c <= 0x30FF) return c == 0x30FB ? kSep : kIso;  // Hiragana, Katakana (not the middle dot)
    if (c <= 0x312F) return kIso;                        // Bopomofo
    if (c <= 0x318F) return kWord;                       // Hangul compatibility jamo
    if (c <= 0x4DBF) return kIso;  // kanbun, strokes, Katakana ext., enclosed/compat CJK, Ext. A
    if (c <= 0x4DFF) return kSep;  // Yijing hexagram symbols
    return kIso;                   // CJK unified ideographs
  }
  if (c < 0xF900) {
    if (c <= 0xA4CF) return kIso;                  // Yi
    if (in(c, 0xAC00, 0xD7FF)) return kWord;       // Hangul syllables and jamo
    if (in(c, 0xD800, 0xDFFF)) return kSep;        // lone surrogates
    if (c >= 0xE000) return kSep;                  // private use
    return kWord;
  }
  if (c < 0x10000) {
    if (c <= 0xFAFF) return kIso;                  // CJK compatibility ideographs
    if (in(c, 0xFE00, 0xFE0F) || c == 0xFEFF) return kSkip;
    if (in(c, 0xFE10, 0xFE1F) || in(c, 0xFE30, 0xFE6F)) return kSep;
    if (c >= 0xFF00) {  // halfwidth and fullwidth forms
      if (in(c, 0xFF10, 0xFF19) || in(c, 0xFF21, 0xFF3A) || in(c, 0xFF41, 0xFF5A) || in(c, 0xFFA0, 0xFFDC)) {
        return kWord;
      }
      if (in(c, 0xFF66, 0xFF9F)) return kIso;  // halfwidth Katakana
      return kSep;
    }
    return kWord;
  }
  if (in(c, 0x1F000, 0x1FAFF)) return kSep;  // emoji, mahjong, playing cards, symbols
  if (in(c, 0x20000, 0x3FFFF)) return kIso;  // CJK extensions B..H
  if (in(c, 0xE0000, 0xE0FFF)) return kSkip; // tags, variation selectors supplement
  if (c >= 0xF0000) return kSep;             // private use planes
  return kWord;
}

// ASCII: 0 for a separator, else the lowercased character.
struct AsciiTable {
  unsigned char map[128];
  AsciiTable() {
    for (int c = 0; c < 128; ++c) {
      const bool word = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      map[c] = static_cast<unsigned char>(!word ? 0 : (c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
  }
};
const AsciiTable kAscii;

inline unsigned char* put_utf8(unsigned char* p, std::uint32_t c) {
  if (c < 0x80) {
    *p++ = static_cast<unsigned char>(c);
  } else if (c < 0x800) {
    *p++ = static_cast<unsigned char>(0xC0 | (c >> 6));
    *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    *p++ = static_cast<unsigned char>(0xE0 | (c >> 12));
    *p++ = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
    *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
  } else {
    *p++ = static_cast<unsigned char>(0xF0 | (c >> 18));
    *p++ = static_cast<unsigned char>(0x80 | ((c >> 12) & 0x3F));
    *p++ = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
    *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
  }
  return p;
}

template <typename Unit>
void normalize_units(const Unit* in_units, std::size_t length, NormalizedText& out) {
  // Worst case per code unit: a separating space plus its UTF-8 bytes (<= 2 for Latin-1).
  // (+8: word_hash reads whole 8-byte words past a word's end.)
  const std::size_t worst = length * (sizeof(Unit) == 1 ? 3 : 5) + 1 + 8;
  if (out.buf.size() < worst) out.buf.resize(worst);
  if (out.starts.size() < length + 1) {  // at most one word per code unit
    out.starts.resize(length + 1);
    out.ends.resize(length + 1);
  }
  unsigned char* const base = out.buf.data();
  std::uint32_t* const st = out.starts.data();
  std::uint32_t* const en = out.ends.data();
  unsigned char* p = base;
  std::size_t ns = 0, ne = 0;  // words started / ended
  bool in_word = false;
  for (std::size_t i = 0; i < length; ++i) {
    const std::uint32_t c = in_units[i];
    if (c < 0x80) {  // ASCII, branch-free: separators and word characters alternate unpredictably
      const unsigned char lc = kAscii.map[c];
      const bool word = lc != 0;
      const bool start = word && !in_word;
      en[ne] = static_cast<std::uint32_t>(p - base);
      ne += !word && in_word;
      *p = ' ';
      p += start && p != base;
      st[ns] = static_cast<std::uint32_t>(p - base);
      ns += start;
      *p = lc;
      p += word;
      in_word = word;
      continue;
    }
    const CharClass cls = classify_non_ascii(c);
    switch (cls) {
      case kWord:
        if (!in_word) {
          if (p != base) *p++ = ' ';
          st[ns++] = static_cast<std::uint32_t>(p - base);
          in_word = true;
        }
        p = put_utf8(p, fold_case(c));
        break;
      case kIso:
        if (in_word) en[ne++] = static_cast<std::uint32_t>(p - base);
        in_word = false;
        if (p != base) *p++ = ' ';
        st[ns++] = static_cast<std::uint32_t>(p - base);
        p = put_utf8(p, c);
        en[ne++] = static_cast<std::uint32_t>(p - base);
        break;
      case kSep:
        if (in_word) en[ne++] = static_cast<std::uint32_t>(p - base);
        in_word = false;
        break;
      case kSkip:
        break;
    }
  }
  if (in_word) en[ne++] = static_cast<std::uint32_t>(p - base);
  out.words = ns;
  out.size = static_cast<std::size_t>(p - base);
}

#if BMF_MINHASH_X86
// All-ASCII Latin-1 text, 32 bytes at a time: `buf` gets the lowercased bytes at the same offsets
// (separators left as they are: only the word spans matter) and the spans come from the bit mask
// of word characters. Returns false (output unspecified) as soon as a non-ASCII byte shows up.
__attribute__((target("avx2"))) bool normalize_ascii_avx2(const std::uint8_t* in, std::size_t length,
                                                                 NormalizedText& out) {
  const std::size_t padded = (length + 31) / 32 * 32 + 8;
  if (out.buf.size() < padded) out.buf.resize(padded);
  const std::size_t max_words = length / 2 + 2;
  if (out.starts.size() < max_words) {
    out.starts.resize(max_words);
    out.ends.resize(max_words);
  }
  unsigned char* const base = out.buf.data();
  std::uint32_t* const st = out.starts.data();
  std::uint32_t* const en = out.ends.data();
  std::size_t ns = 0, ne = 0;
  std::uint32_t carry = 0;  // 1 when the byte before this chunk is a word character
  const __m256i before_A = _mm256_set1_epi8('A' - 1), after_Z = _mm256_set1_epi8('Z' + 1);
  const __m256i before_a = _mm256_set1_epi8('a' - 1), after_z = _mm256_set1_epi8('z' + 1);
  const __m256i before_0 = _mm256_set1_epi8('0' - 1), after_9 = _mm256_set1_epi8('9' + 1);
  const __m256i bit5 = _mm256_set1_epi8(0x20);
  for (std::size_t i = 0; i < length; i += 32) {
    __m256i v;
    std::uint32_t valid = 0xFFFFFFFFu;
    if (i + 32 <= length) {
      v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    } else {
      alignas(32) std::uint8_t tail[32] = {};
      std::memcpy(tail, in + i, length - i);
      v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      valid = (1u << (length - i)) - 1;
    }
    if (_mm256_movemask_epi8(v) != 0) return false;  // a byte >= 0x80 (signed compares below need ASCII)
    const __m256i upper = _mm256_and_si256(_mm256_cmpgt_epi8(v, before_A), _mm256_cmpgt_epi8(after_Z, v));
    const __m256i lower = _mm256_or_si256(v, _mm256_and_si256(upper, bit5));
    const __m256i letter = _mm256_and_si256(_mm256_cmpgt_epi8(lower, before_a), _mm256_cmpgt_epi8(after_z, lower));
    const __m256i digit = _mm256_and_si256(_mm256_cmpgt_epi8(v, before_0), _mm256_cmpgt_epi8(after_9, v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(base + i), lower);
    const std::uint32_t m = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_or_si256(letter, digit))) & valid;
    const std::uint32_t prev = (m << 1) | carry;
    std::uint32_t starts = m & ~prev;
    std::uint32_t ends = ~m & prev;
    carry = m >> 31;
    while (starts) {
      st[ns++] = static_cast<std::uint32_t>(i + __builtin_ctz(starts));
      starts &= starts - 1;
    }
    while (ends) {
      en[ne++] = static_cast<std::uint32_t>(i + __builtin_ctz(ends));
      ends &= ends - 1;
    }
  }
  if (ne < ns) en[ne++] = static_cast<std::uint32_t>(length);
  out.words = ns;
  out.size = length;
  return true;
}
#endif

inline std::uint64_t mix64(std::uint64_t z) {  // MurmurHash3 fmix64
  z = (z ^ (z >> 33)) * 0xFF51AFD7ED558CCDULL;
  z = (z ^ (z >> 33)) * 0xC4CEB9FE1A85EC53ULL;
  return z ^ (z >> 33);
}

inline std::uint64_t load_le64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

constexpr std::uint64_t kWordMul = 0x9FB21C651E98DF25ULL;
constexpr std::uint64_t kShingleBase = 0xD6E8FEB86659FD93ULL;  // odd

// 64-bit hash of one word's UTF-8 bytes (reads up to 7 bytes past the end: buffers are padded).
// Words of at most 8 bytes (most of them) map injectively for a given length.
inline std::uint64_t word_hash(const unsigned char* p, std::size_t len, std::uint64_t seed) {
  std::uint64_t h = seed ^ (static_cast<std::uint64_t>(len) * 0x9E3779B97F4A7C15ULL);
  while (len > 8) {
    h = (h ^ load_le64(p)) * kWordMul;
    h = (h << 31) | (h >> 33);
    p += 8;
    len -= 8;
  }
  const std::uint64_t keep = len == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * len)) - 1;
  return mix64(h ^ (load_le64(p) & keep));
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// sig[i] = min(sig[i], ((a_i * x + b_i) mod 2^64) >> 32) over the hashes, for slots [begin, end).
void minhash_scalar(const HashFamily& f, std::size_t begin, std::size_t end, const std::uint32_t* xs,
                    std::size_t count, std::uint32_t* sig) {
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

__attribute__((target("avx512f"))) std::size_t minhash_avx512(const HashFamily& f, std::size_t begin,
                                                              std::size_t end, const std::uint32_t* xs,
                                                              std::size_t count, std::uint32_t* sig) {
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
// Public helpers
// ---------------------------------------------------------------------------------------------

void normalize_text(const TextView& text, NormalizedText& out, Isa isa) {
  switch (text.kind) {
    case 1:
#if BMF_MINHASH_X86
      if (isa == Isa::kAuto) isa = best_isa();
      if ((isa == Isa::kAvx2 || isa == Isa::kAvx512) &&
          normalize_ascii_avx2(static_cast<const std::uint8_t*>(text.data), text.length, out)) {
        break;
      }
#else
      (void)isa;
#endif
      normalize_units(static_cast<const std::uint8_t*>(text.data), text.length, out);
      break;
    case 2:
      normalize_units(static_cast<const std::uint16_t*>(text.data), text.length, out);
      break;
    default:
      normalize_units(static_cast<const std::uint32_t*>(text.data), text.length, out);
      break;
  }
}

Isa best_isa() {
  static const Isa best = detect_best();
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    default:
      return "auto";
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

void shingle_hashes(const NormalizedText& norm, std::size_t ngram, std::uint64_t seed,
                    std::vector<std::uint64_t>& word_hashes, std::vector<std::uint32_t>& out) {
  const std::size_t words = norm.words;
  out.clear();
  if (words == 0) return;
  if (word_hashes.size() < words) word_hashes.resize(words);
  std::uint64_t* const wh = word_hashes.data();
  const unsigned char* bytes = norm.buf.data();
  for (std::size_t k = 0; k < words; ++k) {
    wh[k] = word_hash(bytes + norm.starts[k], norm.ends[k] - norm.starts[k], seed);
  }
  // Shingle k: S = sum_j wh[k + j] * B^(n-1-j) (mod 2^64), x = low 32 bits of fmix64(S).
  const std::size_t n = std::min(ngram, words);  // fewer than ngram words: one shingle of all of them
  const std::size_t count = words - n + 1;
  out.resize(count);
  if (n <= 16) {
    std::uint64_t pw[16];
    pw[n - 1] = 1;
    for (std::size_t j = n - 1; j-- > 0;) pw[j] = pw[j + 1] * kShingleBase;
    for (std::size_t k = 0; k < count; ++k) {
      std::uint64_t acc = 0;
      for (std::size_t j = 0; j < n; ++j) acc += wh[k + j] * pw[j];
      out[k] = static_cast<std::uint32_t>(mix64(acc));
    }
  } else {  // rolling form of the same sum
    std::uint64_t top = 1;  // B^(n-1)
    for (std::size_t j = 1; j < n; ++j) top *= kShingleBase;
    std::uint64_t acc = 0;
    for (std::size_t j = 0; j < n; ++j) acc = acc * kShingleBase + wh[j];
    out[0] = static_cast<std::uint32_t>(mix64(acc));
    for (std::size_t k = 1; k < count; ++k) {
      acc = (acc - wh[k - 1] * top) * kShingleBase + wh[k + n - 1];
      out[k] = static_cast<std::uint32_t>(mix64(acc));
    }
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

// ---------------------------------------------------------------------------------------------
// MinHashIndex
// ---------------------------------------------------------------------------------------------

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
  return chunks_.size() * kChunkDocs * num_perm_ * sizeof(std::uint32_t) +
         cluster_.capacity() * sizeof(std::uint32_t) + slots_.capacity() * sizeof(Slot) +
         nodes_.capacity() * sizeof(Node) + keys_scratch_.capacity() * sizeof(std::uint64_t) +
         empty_scratch_.capacity();
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

namespace {

// reserve() to at least `size` elements, growing geometrically so that many small batches do not
// reallocate (and copy) on every call.
template <typename T>
void reserve_geometric(std::vector<T>& v, std::size_t size) {
  if (v.capacity() < size) v.reserve(std::max(size, v.capacity() + v.capacity() / 2));
}

// Joins worker threads (after asking them to stop) on every way out of run_pipelined.
struct JoinGuard {
  std::vector<std::thread>& pool;
  std::atomic<bool>& stop;
  ~JoinGuard() {
    stop.store(true);
    for (auto& th : pool) {
      if (th.joinable()) th.join();
    }
  }
};

// The signature / clustering pipeline shared by MinHashIndex::add and cluster_union_find.
//
// `compute(i, scratch)` (signature and band keys of document i: independent of every other document, so
// deterministic) runs block by block on `threads` threads, the calling thread included; meanwhile the
// calling thread hands the finished blocks, strictly in document order, to `consume(begin, end, ready_end)`
// (documents [begin, end); [end, ready_end) are computed as well, for prefetching), helping with the
// signatures whenever the next block is not ready yet. So the sequential part sees documents in index
// order whatever the thread count. `setup()` runs on the calling thread once the workers have started.
// An exception in `compute` stops the pipeline and is rethrown after every worker has stopped (the
// blocks consumed so far stay consumed); one from `setup` / `consume` propagates the same way.
template <typename Compute, typename Setup, typename Consume>
void run_pipelined(std::size_t n, std::size_t threads, Compute&& compute, Setup&& setup, Consume&& consume) {
  constexpr std::size_t kBlock = 64;
  const std::size_t num_blocks = (n + kBlock - 1) / kBlock;
  std::unique_ptr<std::atomic<std::uint8_t>[]> done(new std::atomic<std::uint8_t>[num_blocks]);
  for (std::size_t k = 0; k < num_blocks; ++k) done[k].store(0, std::memory_order_relaxed);
  std::atomic<std::size_t> next_block{0};
  std::atomic<bool> stop{false};
  std::exception_ptr failure;
  std::mutex failure_mutex;

  auto compute_next = [&](SignatureScratch& scratch) -> bool {
    const std::size_t k = next_block.fetch_add(1, std::memory_order_relaxed);
    if (k >= num_blocks) return false;
    const std::size_t end = std::min(n, (k + 1) * kBlock);
    for (std::size_t i = k * kBlock; i < end; ++i) compute(i, scratch);
    done[k].store(1, std::memory_order_release);
    return true;
  };
  auto worker = [&]() {
    try {
      SignatureScratch scratch;
      while (!stop.load(std::memory_order_relaxed) && compute_next(scratch)) {
      }
    } catch (...) {
      std::lock_guard<std::mutex> g(failure_mutex);
      if (!failure) failure = std::current_exception();
      stop.store(true);
    }
  };

  std::vector<std::thread> pool;
  threads = std::max<std::size_t>(1, std::min(threads, num_blocks));
  pool.reserve(threads - 1);
  JoinGuard guard{pool, stop};
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // could not start more threads: the running ones finish the work
    }
  }

  SignatureScratch scratch;
  setup();
  for (std::size_t k = 0; k < num_blocks; ++k) {
    while (!done[k].load(std::memory_order_acquire)) {
      if (stop.load()) break;
      if (!compute_next(scratch)) std::this_thread::yield();
    }
    if (!done[k].load(std::memory_order_acquire)) break;  // a worker failed
    const std::size_t end = std::min(n, (k + 1) * kBlock);
    const std::size_t ready_end =
        (k + 1 < num_blocks && done[k + 1].load(std::memory_order_acquire)) ? std::min(n, end + kBlock) : end;
    consume(k * kBlock, end, ready_end);
  }
  stop.store(true);
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

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

// ---------------------------------------------------------------------------------------------
// One-shot union-find clustering
// ---------------------------------------------------------------------------------------------

UnionFindStats cluster_union_find(const TextView* texts, std::size_t n, double threshold, std::uint32_t ngram,
                                  std::uint32_t num_perm, std::uint32_t bands, std::uint64_t seed,
                                  std::uint32_t max_members, std::size_t threads, Isa isa,
                                  std::int64_t* clusters_out) {
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
    std::uint64_t key;    // 0 = empty
    std::uint32_t head;   // first node (the most recently stored member), kNone if none
    std::uint16_t count;  // stored members (at most max_members: the bucket's first ones)
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

// ---------------------------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'B', 'M', 'F', 'M', 'H', 'I', 'X', '\0'};
constexpr std::size_t kHeaderSize = 96;
constexpr std::uint32_t kMaxPerm = 1u << 16;
constexpr std::uint32_t kMaxNgram = 1u << 16;
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 40;

bool host_little_endian() {
  const std::uint32_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <typename T>
void put(unsigned char* header, std::size_t offset, T value) {
  std::memcpy(header + offset, &value, sizeof(T));
}
template <typename T>
T get(const unsigned char* header, std::size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(T));
  return value;
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

void MinHashIndex::save(const std::string& path) const {
  static_assert(sizeof(Slot) == 16 && sizeof(Node) == 8, "unexpected padding");
  if (!host_little_endian()) throw std::runtime_error("MinHashIndex.save: only little-endian hosts are supported");
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string tmp = path + ".tmp";
  FilePtr f(std::fopen(tmp.c_str(), "wb"));
  if (!f) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  std::vector<std::uint64_t> block_hashes;
  auto write = [&](const void* data, std::size_t bytes) {
    block_hashes.push_back(xxh64(data, bytes, 0));
    if (bytes != 0 && std::fwrite(data, 1, bytes, f.get()) != bytes) {
      throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
    }
  };
  unsigned char header[kHeaderSize] = {};
  std::memcpy(header, kMagic, 8);
  put<std::uint32_t>(header, 8, kFormatVersion);
  put<std::uint32_t>(header, 12, num_perm_);
  put<std::uint32_t>(header, 16, bands_);
  put<std::uint32_t>(header, 20, ngram_);
  put<std::uint64_t>(header, 24, seed_);
  put<double>(header, 32, threshold_);
  put<std::uint64_t>(header, 40, cluster_.size());
  put<std::uint64_t>(header, 48, num_clusters_);
  put<std::uint64_t>(header, 56, slots_.size());
  put<std::uint64_t>(header, 64, used_slots_);
  put<std::uint64_t>(header, 72, nodes_.size());
  put<std::uint32_t>(header, 80, max_reps_);
  write(header, kHeaderSize);
  write(cluster_.data(), cluster_.size() * sizeof(std::uint32_t));
  const std::uint64_t n = cluster_.size();
  for (std::uint64_t c = 0; c * kChunkDocs < n; ++c) {
    const std::uint64_t docs = std::min<std::uint64_t>(kChunkDocs, n - c * kChunkDocs);
    write(chunks_[c].get(), docs * num_perm_ * sizeof(std::uint32_t));
  }
  write(slots_.data(), slots_.size() * sizeof(Slot));
  write(nodes_.data(), nodes_.size() * sizeof(Node));
  const std::uint64_t checksum = xxh64(block_hashes.data(), block_hashes.size() * 8, 0);
  if (std::fwrite(&checksum, 1, 8, f.get()) != 8 || std::fflush(f.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  }
  if (std::fclose(f.release()) != 0) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "cannot rename " + tmp + " to " + path);
  }
}

std::unique_ptr<MinHashIndex> MinHashIndex::load(const std::string& path) {
  auto fail = [&](const std::string& problem) -> IndexFileError {
    return IndexFileError(path + ": " + problem);
  };
  if (!host_little_endian()) throw fail("MinHashIndex.load: only little-endian hosts are supported");
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw fail(std::string("cannot open: ") + std::strerror(errno));
  if (std::fseek(f.get(), 0, SEEK_END) != 0) throw fail("cannot seek (not a regular file?)");
  const long end = std::ftell(f.get());
  if (end < 0) throw fail("cannot tell its size (not a regular file?)");
  std::rewind(f.get());
  const std::uint64_t file_size = static_cast<std::uint64_t>(end);
  if (file_size < kHeaderSize + 8) {
    throw fail("truncated or not a MinHash index: " + std::to_string(file_size) +
               " bytes, a MinHash index file has at least " + std::to_string(kHeaderSize + 8));
  }
  std::vector<std::uint64_t> block_hashes;
  auto read = [&](void* data, std::size_t bytes) {
    if (bytes != 0 && std::fread(data, 1, bytes, f.get()) != bytes) throw fail("read error (file changed?)");
    block_hashes.push_back(xxh64(data, bytes, 0));
  };
  unsigned char header[kHeaderSize];
  read(header, kHeaderSize);
  if (std::memcmp(header, kMagic, 8) != 0) {
    throw fail("not a MinHash index file (bad magic; expected \"BMFMHIX\\0\" as written by MinHashIndex.save)");
  }
  const std::uint32_t version = get<std::uint32_t>(header, 8);
  if (version != kFormatVersion) {
    throw fail("unsupported MinHash index format version " + std::to_string(version) + "; expected " +
               std::to_string(kFormatVersion));
  }
  const std::uint32_t num_perm = get<std::uint32_t>(header, 12);
  const std::uint32_t bands = get<std::uint32_t>(header, 16);
  const std::uint32_t ngram = get<std::uint32_t>(header, 20);
  const std::uint64_t seed = get<std::uint64_t>(header, 24);
  const double threshold = get<double>(header, 32);
  const std::uint64_t num_docs = get<std::uint64_t>(header, 40);
  const std::uint64_t num_clusters = get<std::uint64_t>(header, 48);
  const std::uint64_t capacity = get<std::uint64_t>(header, 56);
  const std::uint64_t used = get<std::uint64_t>(header, 64);
  const std::uint64_t num_nodes = get<std::uint64_t>(header, 72);
  const std::uint32_t max_reps = get<std::uint32_t>(header, 80);
  if (num_perm == 0 || num_perm > kMaxPerm || bands == 0 || bands > num_perm || num_perm % bands != 0 ||
      ngram == 0 || ngram > kMaxNgram || !(threshold > 0.0 && threshold <= 1.0) || max_reps == 0 ||
      max_reps > 65535) {
    throw fail("corrupt header (invalid parameters num_perm=" + std::to_string(num_perm) +
               " bands=" + std::to_string(bands) + " ngram=" + std::to_string(ngram) + " threshold=" +
               std::to_string(threshold) + ")");
  }
  if (num_docs > kMaxDocs || num_clusters > num_docs || capacity > kMaxSlots ||
      (capacity & (capacity - 1)) != 0 || used * 10 > capacity * 7 || num_nodes > kMaxDocs ||
      num_nodes > used * max_reps || (capacity == 0 && num_docs > num_clusters)) {
    throw fail("corrupt header (inconsistent sizes: documents=" + std::to_string(num_docs) + " buckets=" +
               std::to_string(used) + "/" + std::to_string(capacity) + " entries=" + std::to_string(num_nodes) + ")");
  }
  const std::uint64_t expected = kHeaderSize + num_docs * 4 + num_docs * num_perm * 4 + capacity * sizeof(Slot) +
                                 num_nodes * sizeof(Node) + 8;
  if (file_size < expected) {
    throw fail("truncated: " + std::to_string(file_size) + " bytes, the header promises " +
               std::to_string(expected));
  }
  if (file_size > expected) {
    throw fail("corrupt: " + std::to_string(file_size - expected) + " unexpected trailing bytes (expected " +
               std::to_string(expected) + " bytes)");
  }
  std::unique_ptr<MinHashIndex> index(new MinHashIndex(threshold, ngram, num_perm, bands, seed, max_reps));
  index->cluster_.resize(num_docs);
  read(index->cluster_.data(), num_docs * 4);
  index->reserve_docs(num_docs);
  for (std::uint64_t c = 0; c * kChunkDocs < num_docs; ++c) {
    const std::uint64_t docs = std::min<std::uint64_t>(kChunkDocs, num_docs - c * kChunkDocs);
    read(index->chunks_[c].get(), docs * num_perm * 4);
  }
  index->slots_.resize(capacity);
  read(index->slots_.data(), capacity * sizeof(Slot));
  index->nodes_.resize(num_nodes);
  read(index->nodes_.data(), num_nodes * sizeof(Node));
  std::uint64_t stored_checksum = 0;
  if (std::fread(&stored_checksum, 1, 8, f.get()) != 8) throw fail("read error (file changed?)");
  if (stored_checksum != xxh64(block_hashes.data(), block_hashes.size() * 8, 0)) {
    throw fail("corrupt: checksum mismatch (the file was modified or damaged after it was saved)");
  }
  // Structural checks: whatever the bytes say, nothing may index out of bounds or loop.
  std::uint64_t roots = 0;
  for (std::uint64_t d = 0; d < num_docs; ++d) {
    const std::uint32_t c = index->cluster_[d];
    if (c > d || index->cluster_[c] != c) throw fail("corrupt: bad cluster id at document " + std::to_string(d));
    roots += c == d;
  }
  if (roots != num_clusters) throw fail("corrupt: cluster count does not match the header");
  std::vector<std::uint8_t> seen(num_nodes, 0);
  std::uint64_t used_seen = 0, nodes_seen = 0;
  for (const Slot& s : index->slots_) {
    if (s.key == 0) {
      if (s.head != kNone || s.count != 0) throw fail("corrupt: bucket table");
      continue;
    }
    ++used_seen;
    if (s.count == 0 || s.count > max_reps) throw fail("corrupt: bucket size");
    std::uint32_t steps = 0;
    for (std::uint32_t n = s.head; n != kNone; n = index->nodes_[n].next) {
      if (n >= num_nodes || seen[n] || ++steps > s.count || index->nodes_[n].doc >= num_docs) {
        throw fail("corrupt: bucket entry list");
      }
      seen[n] = 1;
    }
    if (steps != s.count) throw fail("corrupt: bucket size");
    nodes_seen += steps;
  }
  if (used_seen != used || nodes_seen != num_nodes) throw fail("corrupt: bucket counts do not match the header");
  index->num_clusters_ = num_clusters;
  index->used_slots_ = used;
  return index;
}

}  // namespace dedup
}  // namespace bmf
