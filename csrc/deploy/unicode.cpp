#include "unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <stdexcept>

namespace bmf {

namespace {

constexpr int kCrateUnicodeMajor = 8;  // the unicode_categories crate's tables

bool assigned_by_v8(char32_t c) {
  UVersionInfo v;
  u_charAge((UChar32)c, v);
  return v[0] != 0 && v[0] <= kCrateUnicodeMajor;  // age 0.0: unassigned
}

inline uint32_t gc_mask(char32_t c) { return U_GET_GC_MASK((UChar32)c); }

// Characters whose general category changed after Unicode 8 (found by comparing every code point with Python
// `tokenizers`; tests/export/test_runner_tokenizers.py::test_every_code_point_parity): P* or Mn then, not now, or
// the other way round.
bool was_punctuation_v8(char32_t c) { return c == 0x166D || c == 0x111C9; }  // now So, Mn
bool was_mark_nonspacing_v8(char32_t c) { return c == 0x1734; }              // now Mc
bool was_not_mark_nonspacing_v8(char32_t c) {                                // then Lo, Lo, Mc, Po; now Mn
  return c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9;
}

}  // namespace

U32 utf8_decode(const std::string& s) {
  U32 out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const int32_t n = (int32_t)s.size();
  int32_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      out.push_back(p[i++]);
      continue;
    }
    UChar32 c;
    U8_NEXT(p, i, n, c);
    out.push_back(c < 0 ? 0xFFFD : (char32_t)c);
  }
  return out;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back((char)c);
  } else if (c < 0x800) {
    out.push_back((char)(0xC0 | (c >> 6)));
    out.push_back((char)(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back((char)(0xE0 | (c >> 12)));
    out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
    out.push_back((char)(0x80 | (c & 0x3F)));
  } else {
    out.push_back((char)(0xF0 | (c >> 18)));
    out.push_back((char)(0x80 | ((c >> 12) & 0x3F)));
    out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
    out.push_back((char)(0x80 | (c & 0x3F)));
  }
}

std::string utf8_encode(const U32& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

bool is_white_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty((UChar32)c, UCHAR_WHITE_SPACE);
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return gc_mask(c) & U_GC_L_MASK;
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return gc_mask(c) & U_GC_N_MASK;
}

bool is_other_v8(char32_t c) {
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  return (gc_mask(c) & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK)) && assigned_by_v8(c);
}

bool is_punctuation_v8(char32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);  // ASCII punctuation (Rust is_ascii_punctuation) is P* or S*
  if (was_punctuation_v8(c)) return true;
  return (gc_mask(c) & U_GC_P_MASK) && assigned_by_v8(c);
}

bool is_mark_nonspacing_v8(char32_t c) {
  if (c < 0x300 || was_not_mark_nonspacing_v8(c)) return false;
  if (was_mark_nonspacing_v8(c)) return true;
  return (gc_mask(c) & U_GC_MN_MASK) && assigned_by_v8(c);
}

void append_lower(U32& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  UChar src[2], dst[8];
  int32_t len = 0;
  U16_APPEND_UNSAFE(src, len, (UChar32)c);
  UErrorCode err = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 8, src, len, "", &err);
  if (U_FAILURE(err) || n > 8) {
    out.push_back(c);
    return;
  }
  for (int32_t i = 0; i < n;) {
    UChar32 d;
    U16_NEXT(dst, i, n, d);
    out.push_back((char32_t)d);
  }
}

U32 nfd(const U32& s) {
  bool simple = true;  // below U+00C0 nothing decomposes
  for (char32_t c : s)
    if (c >= 0xC0) {
      simple = false;
      break;
    }
  if (simple) return s;
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = unorm2_getNFDInstance(&err);
  if (U_FAILURE(err)) throw std::runtime_error("ICU: no NFD normalizer");
  std::u16string src;
  src.reserve(s.size() + 8);
  for (char32_t c : s) {
    UChar buf[2];
    int32_t len = 0;
    U16_APPEND_UNSAFE(buf, len, (UChar32)c);
    src.append(reinterpret_cast<char16_t*>(buf), len);
  }
  std::u16string dst(src.size() * 4 + 16, u'\0');
  int32_t n = unorm2_normalize(norm, reinterpret_cast<const UChar*>(src.data()), (int32_t)src.size(),
                               reinterpret_cast<UChar*>(dst.data()), (int32_t)dst.size(), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.assign(n, u'\0');
    n = unorm2_normalize(norm, reinterpret_cast<const UChar*>(src.data()), (int32_t)src.size(),
                         reinterpret_cast<UChar*>(dst.data()), (int32_t)dst.size(), &err);
  }
  if (U_FAILURE(err)) throw std::runtime_error("ICU: NFD failed");
  U32 out;
  out.reserve(n);
  const auto* d = reinterpret_cast<const UChar*>(dst.data());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U16_NEXT(d, i, n, c);
    out.push_back((char32_t)c);
  }
  return out;
}

}  // namespace bmf
