#include "token.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "encode.h"
#include "output.h"
#include "text.h"

namespace bmf {

namespace {

// words.py SINGLE_RANGES: inclusive, sorted, disjoint.
constexpr char32_t kSingleRanges[][2] = {
    {0x21, 0x2F},       {0x3A, 0x40},     {0x5B, 0x60}, {0x7B, 0x7E},  // ASCII punctuation and symbols
    {0x2010, 0x2027},   {0x2030, 0x205E},                              // General Punctuation
    {0x2E80, 0x2FDF},                                                  // CJK radicals, Kangxi radicals
    {0x3001, 0x303F},                                                  // CJK symbols and punctuation
    {0x3040, 0x30FF},                                                  // hiragana, katakana
    {0x3400, 0x4DBF},                                                  // CJK Extension A
    {0x4E00, 0x9FFF},                                                  // CJK Unified Ideographs
    {0xAC00, 0xD7A3},                                                  // hangul syllables
    {0xF900, 0xFAFF},                                                  // CJK compatibility ideographs
    {0xFE30, 0xFE4F},                                                  // CJK compatibility forms
    {0xFF01, 0xFF65},    // full-width ASCII forms, half-width CJK punctuation
    {0x20000, 0x2FA1F},  // CJK Extensions B-F, compatibility supplement
};

// Code points of `s` (valid UTF-8: the text after sanitize_utf8) and the byte offset of each, plus the end.
void decode_with_offsets(const std::string& s, std::u32string& cps, std::vector<size_t>& at) {
  cps.clear();
  at.clear();
  cps.reserve(s.size());
  at.reserve(s.size() + 1);
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; k < len && i + k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    at.push_back(i);
    cps.push_back(c);
    i = std::min(n, i + len);
  }
  at.push_back(n);
}

// One label split as eval/entity_metrics reads it: prefix 'O', 'B' or 'I', and the entity type.
struct Tag {
  char prefix;
  std::string type;
};

std::vector<Tag> parse_tags(const std::vector<std::string>& labels) {
  std::vector<Tag> tags;
  tags.reserve(labels.size());
  for (const std::string& l : labels) tags.push_back(l == "O" ? Tag{'O', ""} : Tag{l[0], l.substr(2)});
  return tags;
}

// Index of the largest value, the first one on ties; a NaN wins (torch.argmax's order on the CPU).
int32_t argmax(const float* z, int64_t c) {
  int64_t best = 0;
  for (int64_t k = 1; k < c && !std::isnan(z[best]); ++k)
    if (std::isnan(z[k]) || z[k] > z[best]) best = k;
  return (int32_t)best;
}

// The entities of one text from its word spans and per-word tags: seqeval's default (conlleval) reading, as
// entity_metrics.entities(..., "default") does it (to_bio then maximal B-X I-X* runs): B-X starts an entity, I-X
// continues one of type X that the previous word is in and otherwise starts one, O ends it.
std::vector<TokenEntity> read_entities(const std::vector<Span>& words, const int32_t* tag, const std::vector<Tag>& tags,
                                       const std::vector<size_t>& at) {
  std::vector<TokenEntity> out;
  int64_t first = -1;  // first word of the open entity, -1 when none
  const std::string* type = nullptr;
  auto close = [&](int64_t last) {
    if (first < 0) return;
    const int64_t start = words[first].first, end = words[last].second;
    out.push_back(TokenEntity{type, start, end, at[start], at[end]});
    first = -1;
  };
  const int64_t n = (int64_t)words.size();
  for (int64_t w = 0; w < n; ++w) {
    const Tag& t = tags[tag[w]];
    if (t.prefix == 'O') {
      close(w - 1);
      continue;
    }
    if (t.prefix == 'I' && first >= 0 && *type == t.type) continue;
    close(w - 1);
    first = w;
    type = &t.type;
  }
  close(n - 1);
  return out;
}

// One text of a batch: its words and where its windows and words sit in the batch's arrays.
struct TextWork {
  std::string text;         // after the input policy
  std::vector<size_t> at;   // byte offset of each code point, and the end
  std::vector<Span> words;  // code-point spans
  size_t first_word = 0;    // its first word in the batch's per-word arrays
  size_t first_window = 0, windows = 0;
};

}  // namespace

bool is_word_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_single_word_char(char32_t c) {
  for (const auto& r : kSingleRanges) {
    if (c < r[0]) return false;
    if (c <= r[1]) return true;
  }
  return false;
}

std::vector<Span> split_words(const std::u32string& text) {
  std::vector<Span> spans;
  int64_t start = -1;
  const int64_t n = (int64_t)text.size();
  for (int64_t i = 0; i < n; ++i) {
    const char32_t c = text[i];
    const bool space = is_word_space(c);
    if (space || is_single_word_char(c)) {
      if (start >= 0) {
        spans.emplace_back(start, i);
        start = -1;
      }
      if (!space) spans.emplace_back(i, i + 1);
    } else if (start < 0) {
      start = i;
    }
  }
  if (start >= 0) spans.emplace_back(start, n);
  return spans;
}

std::vector<Span> window_spans(const std::vector<int64_t>& starts, int64_t width, int64_t overlap) {
  if (width < 1 || overlap < 0 || overlap >= width)
    throw std::invalid_argument("window width must be >= 1 and overlap in [0, width), got width=" +
                                std::to_string(width) + ", overlap=" + std::to_string(overlap));
  const int64_t n = starts.back();
  if (n <= width) return {{0, n}};
  // bisect.bisect_right(starts, x, lo, hi) as an index
  auto bisect_right = [&](int64_t x, size_t lo, size_t hi) {
    return (size_t)(std::upper_bound(starts.begin() + lo, starts.begin() + hi, x) - starts.begin());
  };
  const size_t all = starts.size();
  std::vector<Span> spans;
  int64_t start = 0;
  for (;;) {
    const int64_t limit = start + width;
    const size_t k = bisect_right(limit, 0, all) - 1;  // last word start (or the end) <= limit
    const int64_t stop = starts[k] > start ? starts[k] : std::min(limit, n);
    spans.emplace_back(start, stop);
    if (stop >= n) return spans;
    const size_t lo = bisect_right(start, 0, all);  // first word start after start
    const size_t hi = bisect_right(stop, 0, all);   // word starts in (start, stop]: starts[lo:hi]
    const int64_t target = stop - overlap;
    const int64_t j = (int64_t)bisect_right(target, lo, hi) - 1;
    if (j >= (int64_t)lo)
      start = starts[j];
    else if (lo < hi)
      start = starts[lo];
    else  // inside one long word: step by width - overlap
      start = std::max(target, start + 1);
  }
}

std::vector<int64_t> owner_windows(const std::vector<Span>& spans, int64_t n) {
  std::vector<int64_t> owner(n, -1), best(n, -1);
  for (size_t k = 0; k < spans.size(); ++k) {
    const auto [a, b] = spans[k];
    for (int64_t i = std::max<int64_t>(a, 0); i < std::min(b, n); ++i) {
      const int64_t margin = std::min(i - a, b - 1 - i);
      if (margin > best[i]) {
        best[i] = margin;
        owner[i] = (int64_t)k;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i)
    if (owner[i] < 0) throw std::invalid_argument("position " + std::to_string(i) + " lies in no window");
  return owner;
}

void token_batch(Session& s, const std::vector<std::string>& lines, std::string& out, std::FILE* timing) {
  const Clock::time_point t0 = Clock::now();
  const Bundle& bundle = s.bundle;
  const int64_t c = (int64_t)bundle.labels.size();
  const bool wrap = bundle.cls_id >= 0 && bundle.sep_id >= 0;
  const int64_t head = wrap ? 1 : 0;
  const int64_t width = bundle.max_len - (wrap ? 2 : 0);
  const int64_t overlap = std::min(bundle.token_overlap, width / 2);  // token_inputs.effective_overlap

  std::vector<TextWork> texts(lines.size());
  std::vector<std::vector<int64_t>> seqs;                       // model inputs: the windows of every text
  std::vector<std::vector<std::pair<int64_t, size_t>>> wanted;  // per window: (position, word) it predicts
  size_t words_total = 0;
  std::u32string cps;
  std::vector<int> flat;
  std::vector<int64_t> starts;
  for (size_t i = 0; i < lines.size(); ++i) {
    TextWork& t = texts[i];
    t.text = sanitize_utf8(lines[i]);
    decode_with_offsets(t.text, cps, t.at);
    t.words = split_words(cps);
    t.first_word = words_total;
    t.first_window = seqs.size();
    words_total += t.words.size();
    if (t.words.empty()) continue;
    // words.encode_words: the ids of each word alone, a leading bare boundary id dropped, none -> unk
    flat.clear();
    starts.clear();
    for (const auto& [a, b] : t.words) {
      std::vector<int> ids = s.tok->encode(t.text.substr(t.at[a], t.at[b] - t.at[a]));
      if (ids.size() > 1 && ids[0] == bundle.boundary_id) ids.erase(ids.begin());
      if (ids.empty()) {
        if (bundle.unk_id < 0)
          throw std::runtime_error("a word has no sub-token and the bundle has no unk id to stand for it");
        ids.push_back((int)bundle.unk_id);
      }
      starts.push_back((int64_t)flat.size());
      flat.insert(flat.end(), ids.begin(), ids.end());
    }
    const int64_t n = (int64_t)flat.size();
    const std::vector<int64_t> word_starts = starts;  // the first sub-token of each word
    starts.push_back(n);
    const std::vector<Span> spans = window_spans(starts, width, overlap);
    const std::vector<int64_t> owner = owner_windows(spans, n);
    for (const auto& [a, b] : spans) {
      std::vector<int64_t> seq;
      seq.reserve((size_t)(b - a) + 2);
      if (wrap) seq.push_back(bundle.cls_id);
      seq.insert(seq.end(), flat.begin() + a, flat.begin() + b);
      if (wrap) seq.push_back(bundle.sep_id);
      seqs.push_back(std::move(seq));
    }
    t.windows = spans.size();
    wanted.resize(seqs.size());
    for (size_t w = 0; w < word_starts.size(); ++w) {
      const int64_t p = word_starts[w], k = owner[p];
      wanted[t.first_window + k].emplace_back(p - spans[k].first + head, t.first_word + w);
    }
  }
  const double tok_ms = ms_since(t0);

  // Forwards of at most batch_size windows; each word's tag is the argmax at its first sub-token.
  std::vector<int32_t> tag(words_total, 0);
  std::vector<float> word_logits(s.opt.print_logits ? words_total * c : 0);
  double fwd_ms = 0;
  int64_t longest = 0;
  const size_t group = (size_t)std::max<int64_t>(1, s.opt.batch_size);
  for (size_t from = 0; from < seqs.size(); from += group) {
    const size_t to = std::min(seqs.size(), from + group);
    const Batch b = pad(std::vector<std::vector<int64_t>>(seqs.begin() + from, seqs.begin() + to), bundle.pad_id);
    longest = std::max(longest, b.seq);
    const Clock::time_point t = Clock::now();
    const Output logits = s.model->forward(b);
    fwd_ms += ms_since(t);
    if (logits.shape.size() != 3 || logits.shape[0] != b.batch || logits.shape[1] != b.seq || logits.shape[2] != c)
      throw ModelError("model returned logits of shape " + shape_str(logits.shape) + ", expected (" +
                       std::to_string(b.batch) + ", " + std::to_string(b.seq) + ", " + std::to_string(c) + ")");
    for (int64_t r = 0; r < b.batch; ++r) {
      for (const auto& [pos, word] : wanted[from + r]) {
        const float* z = logits.data.data() + (r * b.seq + pos) * c;
        tag[word] = argmax(z, c);
        if (!word_logits.empty()) std::copy(z, z + c, word_logits.begin() + word * c);
      }
    }
  }

  const std::vector<Tag> tags = parse_tags(bundle.labels);
  for (const TextWork& t : texts) {
    const std::vector<TokenEntity> entities = read_entities(t.words, tag.data() + t.first_word, tags, t.at);
    write_token_line(out, s.opt,
                     TokenRow{t.text, entities, t.words, t.windows ? &seqs[t.first_window] : nullptr, t.windows,
                              word_logits.empty() ? nullptr : word_logits.data() + t.first_word * c, (size_t)c});
  }
  if (timing) write_classify_timing(timing, (int64_t)seqs.size(), longest, tok_ms, fwd_ms, ms_since(t0));
}

}  // namespace bmf
