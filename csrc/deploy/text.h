// Input text handling shared by every runner mode: line splitting and the invalid-UTF-8 policy.
//
// The policy is exactly what `bmf predict --input FILE` does in Python (`open(FILE, encoding="utf-8",
// errors="replace")`, iterate lines, strip the newline), so both sides hand the tokenizer the same string:
//
//  * Lines end at "\n", "\r\n" or a lone "\r" (Python's universal newlines); the terminator is dropped. A final
//    line without a terminator counts only if it is non-empty; an empty line in the middle is a (empty) text.
//  * A line longer than max_line_bytes keeps its first max_line_bytes bytes, cut back to the last whole UTF-8
//    character (utf8_cut: an incomplete multi-byte sequence at the cut is dropped); the rest of the line is read
//    and skipped without being stored. Memory is O(max_line_bytes + 64 KiB) whatever the input (bmf's
//    bigmodel_fast/data/lines.py, DEFAULT_MAX_LINE_BYTES = 1 MiB, is the Python statement of the same policy).
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

constexpr size_t kDefaultMaxLineBytes = size_t(1) << 20;  // = Python's DEFAULT_MAX_LINE_BYTES

// `s` without a trailing incomplete UTF-8 sequence (looks at most 4 bytes back; Python's lines._utf8_cut).
void utf8_cut(std::string& s);

// Byte length of the longest prefix of `s` (valid UTF-8) of at most n bytes that ends on a character boundary.
size_t utf8_prefix_len(const std::string& s, size_t n);

// Reads lines from a FILE* with the policy above (bytes only; call sanitize_utf8 on each line).
class LineReader {
 public:
  LineReader(std::FILE* f, size_t max_line_bytes) : f_(f), max_(max_line_bytes), buf_(1 << 16) {}
  // Next line into `line` (at most max_line_bytes bytes); false at end of input. Throws std::runtime_error on a
  // read error.
  bool next(std::string& line);
  int64_t truncated() const { return truncated_; }  // lines that were longer than the cap
  // True when another line can be read without blocking (buffered bytes, end of input, or the descriptor is
  // readable right now). Lets the runner answer a partial batch instead of waiting on an interactive pipe.
  bool ready();

 private:
  bool fill();  // more bytes into buf_; false at end of input
  std::FILE* f_;
  size_t max_;
  int64_t truncated_ = 0;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
  bool skip_lf_ = false;  // the previous line ended with '\r': a following '\n' belongs to it
};

}  // namespace bmf
