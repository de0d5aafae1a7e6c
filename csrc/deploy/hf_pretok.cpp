// BertNormalizer, BertPreTokenizer and the ByteLevel pre-tokenizer of HF `tokenizers`, on code points.
#include <array>

#include "hf_tokenizer.h"

namespace bmf {

namespace {

bool is_cjk(char32_t c) {  // tokenizers' is_chinese_char: the CJK Unified Ideographs blocks
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool bert_whitespace(char32_t c) { return c == '\t' || c == '\n' || c == '\r' || is_white_space(c); }
bool bert_control(char32_t c) { return !(c == '\t' || c == '\n' || c == '\r') && is_other_v8(c); }

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest for U+0100 + n.
struct ByteAlphabet {
  std::array<std::string, 256> utf8;
  std::array<char32_t, 256> cp;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp[b] = printable ? (char32_t)b : (char32_t)(256 + n++);
      utf8[b].clear();
      utf8_append(utf8[b], cp[b]);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

enum Class { kSpace, kLetter, kNumber, kOther };
inline Class cls(char32_t c) {
  if (is_white_space(c)) return kSpace;
  if (is_letter(c)) return kLetter;
  if (is_number(c)) return kNumber;
  return kOther;
}

// End of the GPT-2 pattern's match at i:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t gpt2_match(const U32& s, size_t i) {
  const size_t n = s.size();
  if (s[i] == '\'' && i + 1 < n) {
    const char32_t a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const char32_t b = s[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
  }
  size_t j = i;
  if (s[j] == ' ' && j + 1 < n && cls(s[j + 1]) != kSpace) ++j;  // " ?" before a letter, number or other run
  const Class c = cls(s[j]);
  if (c != kSpace) {
    size_t k = j + 1;
    while (k < n && cls(s[k]) == c) ++k;
    return k;
  }
  size_t k = i + 1;  // a whitespace run
  while (k < n && cls(s[k]) == kSpace) ++k;
  if (k == n || k - i == 1) return k;  // \s+(?!\S) to the end, or the one-character \s+
  return k - 1;                        // leave the last space to the following word
}

}  // namespace

U32 bert_normalize(const U32& s, const BertNormalizerConfig& cfg) {
  U32 out;
  out.reserve(s.size() + 8);
  for (char32_t c : s) {
    if (cfg.clean_text) {
      if (c == 0 || c == 0xFFFD || bert_control(c)) continue;
      if (bert_whitespace(c)) c = ' ';
    }
    if (cfg.handle_chinese_chars && is_cjk(c)) {
      out.push_back(' ');
      out.push_back(c);
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  if (cfg.strip_accents) {
    U32 d = nfd(out);
    out.clear();
    for (char32_t c : d)
      if (!is_mark_nonspacing_v8(c)) out.push_back(c);
  }
  if (cfg.lowercase) {
    U32 low;
    low.reserve(out.size());
    for (char32_t c : out) append_lower(low, c);
    out.swap(low);
  }
  return out;
}

void bert_pretokenize(const U32& s, std::vector<std::string>& words) {
  std::string cur;
  auto flush = [&]() {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (char32_t c : s) {
    if (is_white_space(c)) {
      flush();
    } else if (is_punctuation_v8(c)) {
      flush();
      utf8_append(cur, c);
      flush();
    } else {
      utf8_append(cur, c);
    }
  }
  flush();
}

void byte_level_pretokenize(const U32& in, bool add_prefix_space, bool use_regex, std::vector<std::string>& words) {
  if (in.empty()) return;
  const ByteAlphabet& a = alphabet();
  U32 prefixed;
  const U32* sp = &in;
  if (add_prefix_space && in[0] != ' ') {
    prefixed.reserve(in.size() + 1);
    prefixed.push_back(' ');
    prefixed += in;
    sp = &prefixed;
  }
  const U32& s = *sp;
  std::string bytes, mapped;
  auto emit = [&](size_t b, size_t e) {
    bytes.clear();
    for (size_t k = b; k < e; ++k) utf8_append(bytes, s[k]);
    mapped.clear();
    for (unsigned char ch : bytes) mapped += a.utf8[ch];
    words.push_back(mapped);
  };
  if (!use_regex) {
    emit(0, s.size());
    return;
  }
  for (size_t i = 0; i < s.size();) {
    const size_t e = gpt2_match(s, i);
    emit(i, e);
    i = e;
  }
}

int byte_level_byte(char32_t c) {
  static const std::array<int, 512> rev = [] {
    std::array<int, 512> r{};
    r.fill(-1);
    const ByteAlphabet& a = alphabet();
    for (int b = 0; b < 256; ++b) r[a.cp[b]] = b;
    return r;
  }();
  return c < 512 ? rev[c] : -1;
}

}  // namespace bmf
