// MinHash text side: normalisation of a str's code units into words (case folding, character classes,
// an AVX2 path for all-ASCII text) and the word / shingle hashes. See minhash.h for the contract.
#include "dedup/minhash.h"

#include <algorithm>
#include <cstring>

#include "dedup/minhash_internal.h"

namespace bmf {
namespace dedup {

using detail::mix64;

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
  if (in(c, 0x531, 0x556)) return c + 0x30;                                    // Armenian
  if (in(c, 0x10A0, 0x10C5) || c == 0x10C7 || c == 0x10CD) return c + 0x1C60;  // Georgian Asomtavruli
  if (in(c, 0x1C90, 0x1CBA) || in(c, 0x1CBD, 0x1CBF)) return c - 0xBC0;        // Georgian Mtavruli
  if (in(c, 0x1E00, 0x1EFF)) {                                                 // Latin Extended Additional
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
        case 0xAA:
        case 0xB2:
        case 0xB3:
        case 0xB5:
        case 0xB9:
        case 0xBA:
        case 0xBC:
        case 0xBD:
        case 0xBE: return kWord;
        default: return kSep;
      }
    }
    return (c == 0xD7 || c == 0xF7) ? kSep : kWord;
  }
  if (c < 0x2000) {
    if (c < 0x0E00) {
      switch (c) {  // punctuation of alphabetic scripts
        case 0x37E:
        case 0x387:
        case 0x589:
        case 0x58A:
        case 0x5BE:
        case 0x5C0:
        case 0x5C3:
        case 0x5C6:
        case 0x5F3:
        case 0x5F4:
        case 0x61B:
        case 0x61C:
        case 0x61D:
        case 0x61E:
        case 0x61F:
        case 0x6D4:
        case 0x964:
        case 0x965:
        case 0x970: return kSep;
        default: break;
      }
      if (in(c, 0x55A, 0x55F) || in(c, 0x600, 0x60F) || in(c, 0x66A, 0x66D)) return kSep;
      return kWord;
    }
    if (c < 0x0F00) {  // Thai, Lao
      if (c == 0xE3F || c == 0xE4F || c == 0xE5A || c == 0xE5B) return kSep;
      return kIso;
    }
    if (in(c, 0x1000, 0x109F)) return (c == 0x104A || c == 0x104B) ? kSep : kIso;  // Myanmar
    if (in(c, 0x1780, 0x17FF)) return in(c, 0x17D4, 0x17DA) ? kSep : kIso;         // Khmer
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
    if (c <= 0x312F) return kIso;                       // Bopomofo
    if (c <= 0x318F) return kWord;                      // Hangul compatibility jamo
    if (c <= 0x4DBF) return kIso;                       // kanbun, strokes, Katakana ext., enclosed/compat CJK, Ext. A
    if (c <= 0x4DFF) return kSep;                       // Yijing hexagram symbols
    return kIso;                                        // CJK unified ideographs
  }
  if (c < 0xF900) {
    if (c <= 0xA4CF) return kIso;             // Yi
    if (in(c, 0xAC00, 0xD7FF)) return kWord;  // Hangul syllables and jamo
    if (in(c, 0xD800, 0xDFFF)) return kSep;   // lone surrogates
    if (c >= 0xE000) return kSep;             // private use
    return kWord;
  }
  if (c < 0x10000) {
    if (c <= 0xFAFF) return kIso;  // CJK compatibility ideographs
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
  if (in(c, 0x1F000, 0x1FAFF)) return kSep;   // emoji, mahjong, playing cards, symbols
  if (in(c, 0x20000, 0x3FFFF)) return kIso;   // CJK extensions B..H
  if (in(c, 0xE0000, 0xE0FFF)) return kSkip;  // tags, variation selectors supplement
  if (c >= 0xF0000) return kSep;              // private use planes
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
      case kSkip: break;
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

// ---------------------------------------------------------------------------------------------
// Word hashes
// ---------------------------------------------------------------------------------------------

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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public entry points
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
    case 2: normalize_units(static_cast<const std::uint16_t*>(text.data), text.length, out); break;
    default: normalize_units(static_cast<const std::uint32_t*>(text.data), text.length, out); break;
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
  } else {                  // rolling form of the same sum
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

}  // namespace dedup
}  // namespace bmf
