// Task "token" (token classification, NER): a batch of input lines -> words -> overlapping windows of sub-token ids
// -> forwards of at most --batch-size windows -> one tag per word -> entities -> one output line per text.
//
// The C++ statement of bigmodel_fast/data/words.py (split_words, encode_words), data/token_windows.py
// (window_spans, owner_windows), data/token_inputs.py (framing, a word's logits at its first sub-token in its
// owning window) and eval/token_predict.py + eval/entity_metrics.py (seqeval's default reading of the tags), rule
// for rule: bundle.json "token": {"words": "bmf-words-1", "scheme": "bio", "overlap", "boundary_id"}.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "session.h"

namespace bmf {

using Span = std::pair<int64_t, int64_t>;  // half-open [start, stop)

// True when code point `c` is a word on its own (words.py SINGLE_RANGES: CJK, kana, hangul, CJK / full-width /
// ASCII / General Punctuation).
bool is_single_word_char(char32_t c);
// True for the 25 code points of Unicode's White_Space (words.py WHITESPACE): they separate words.
bool is_word_space(char32_t c);

// The words of `text` as half-open code-point spans, in order (words.py split_words).
std::vector<Span> split_words(const std::u32string& text);

// Windows over n sub-tokens whose word starts are `starts` (ascending, starts[0] = 0, then n appended; each word
// has at least one sub-token): token_windows.py window_spans. Throws std::invalid_argument unless width >= 1 and
// 0 <= overlap < width.
std::vector<Span> window_spans(const std::vector<int64_t>& starts, int64_t width, int64_t overlap);

// Per position 0..n-1 the index of the window that predicts it (token_windows.py owner_windows: the largest
// distance to an edge, ties to the earlier window). Throws std::invalid_argument when a position is in no window.
std::vector<int64_t> owner_windows(const std::vector<Span>& spans, int64_t n);

// Appends one line per element of `lines` (raw bytes; the input policy is applied here) to `out`, and a timing
// line to `timing` when given. Throws ModelError when the model's logits are not (B, S, labels).
void token_batch(Session& s, const std::vector<std::string>& lines, std::string& out, std::FILE* timing);

}  // namespace bmf
