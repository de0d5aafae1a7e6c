#include "text.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bmf {

namespace {
const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

inline bool in(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }
}  // namespace

std::string sanitize_utf8(const std::string& s, size_t* replaced) {
  std::string out;
  out.reserve(s.size());
  size_t count = 0;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out += char(b);
      ++i;
      continue;
    }
    // Table 3-7 of the Unicode standard: length and the allowed range of the second byte.
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (in(b, 0xC2, 0xDF))
      len = 2;
    else if (b == 0xE0) {
      len = 3;
      lo = 0xA0;
    } else if (in(b, 0xE1, 0xEC) || in(b, 0xEE, 0xEF))
      len = 3;
    else if (b == 0xED) {
      len = 3;
      hi = 0x9F;
    } else if (b == 0xF0) {
      len = 4;
      lo = 0x90;
    } else if (in(b, 0xF1, 0xF3))
      len = 4;
    else if (b == 0xF4) {
      len = 4;
      hi = 0x8F;
    }
    if (len == 0) {  // 80..C1, F5..FF: never valid as a first byte
      out += kReplacement;
      ++count;
      ++i;
      continue;
    }
    // Consume the longest valid prefix (the maximal subpart); stop at the first byte that does not fit.
    size_t j = i + 1;
    int got = 1;
    while (got < len && j < n) {
      const unsigned char c = static_cast<unsigned char>(s[j]);
      const bool ok = got == 1 ? in(c, lo, hi) : in(c, 0x80, 0xBF);
      if (!ok) break;
      ++j;
      ++got;
    }
    if (got == len) {
      out.append(s, i, j - i);
    } else {
      out += kReplacement;
      ++count;
    }
    i = j;  // the byte that broke the sequence (if any) starts the next one
  }
  if (replaced) *replaced = count;
  return out;
}

void utf8_cut(std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if (c < 0x80) return;  // ASCII: nothing incomplete at the end
    if (c >= 0xC0) {       // a lead byte: keep it only if its whole sequence is there
      const size_t need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      if (back < need) s.resize(n - back);
      return;
    }
  }
}

size_t utf8_prefix_len(const std::string& s, size_t n) {
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::min(n, s.size());
}

bool LineReader::fill() {
  if (eof_) return false;
  // read(2), not fread: fread waits for a full buffer, which would stall interactive input on a pipe.
  ssize_t n;
  do {
    n = ::read(fileno(f_), buf_.data(), buf_.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw std::runtime_error(std::string("read error: ") + std::strerror(errno));
  len_ = static_cast<size_t>(n);
  pos_ = 0;
  if (len_ == 0) eof_ = true;
  return len_ > 0;
}

bool LineReader::ready() {
  if (pos_ < len_ || eof_) return true;
  struct pollfd p{};
  p.fd = fileno(f_);
  p.events = POLLIN;
  return ::poll(&p, 1, 0) > 0;  // regular files are always readable
}

bool LineReader::next(std::string& line) {
  line.clear();
  bool over = false;  // the line passed the cap: the rest is skipped
  auto finish = [&]() {
    if (over) {
      utf8_cut(line);
      ++truncated_;
    }
    return true;
  };
  for (;;) {
    if (pos_ == len_ && !fill()) return (!line.empty() || over) ? finish() : false;
    if (skip_lf_) {  // the previous line ended with '\r': a '\n' right after it belongs to it
      skip_lf_ = false;
      if (buf_[pos_] == '\n') {
        ++pos_;
        continue;
      }
    }
    size_t end = pos_;
    while (end < len_ && buf_[end] != '\n' && buf_[end] != '\r') ++end;
    const size_t take = std::min(end - pos_, max_ - line.size());
    line.append(buf_.data() + pos_, take);
    if (end - pos_ > take) over = true;
    pos_ = end;
    if (end < len_) {
      skip_lf_ = buf_[end] == '\r';
      ++pos_;
      return finish();
    }
  }
}

}  // namespace bmf
