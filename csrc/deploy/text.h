// Input text handling shared by every runner mode: line splitting and the invalid-UTF-8 policy.
//
// The policy is exactly what `bmf predict --input FILE` does in Python (`open(FILE, encoding="utf-8",
// errors="replace")`, iterate lines, strip the newline), so both sides hand SentencePiece the same string:
//
//  * Lines end at "\n", "\r\n" or a lone "\r" (Python's universal newlines); the terminator is dropped. A final
//    line without a terminator counts only if it is non-empty; an empty line in the middle is a (empty) text.
//  * Invalid UTF-8 is replaced by U+FFFD, one per *maximal subpart* of an ill-formed sequence (Unicode 15,
//    section 3.9, "U+FFFD substitution of maximal subparts", the policy of Python's `errors="replace"` and of the
//    WHATWG encoding standard). Surrogates (ED A0..BF ..), overlong forms (C0, C1, E0 80..9F, F0 80..8F) and code
//    points above U+10FFFF (F4 90.., F5..FF) are ill-formed. Everything else, NUL and a BOM included, is kept.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace bmf {

// `in` with every maximal ill-formed subpart replaced by U+FFFD (EF BF BD). Returns the number of replacements
// through `replaced` when given.
std::string sanitize_utf8(const std::string& in, size_t* replaced = nullptr);

// Reads lines from a FILE* with the policy above (bytes only; call sanitize_utf8 on each line).
class LineReader {
 public:
  explicit LineReader(std::FILE* f) : f_(f), buf_(1 << 16) {}
  // Next line into `line`; false at end of input. Throws std::runtime_error on a read error.
  bool next(std::string& line);
  // True when another line can be read without blocking (buffered bytes, end of input, or the descriptor is
  // readable right now). Lets the runner answer a partial batch instead of waiting on an interactive pipe.
  bool ready();

 private:
  int getc();
  std::FILE* f_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
  bool skip_lf_ = false;  // the previous line ended with '\r': a following '\n' belongs to it
};

}  // namespace bmf
