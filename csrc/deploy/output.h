// The runner's output: one JSON object per line, in the layout of Python's json.dumps (", " and ": " between
// items, non-ASCII written as UTF-8, control characters and U+007F escaped), and the --timing lines.
//
// Strings are escaped by nlohmann/json. The layout itself is written here because nlohmann's dump has no
// ", " / ": " separators, and numbers because its shortest round-trip doubles (0.49639010996..., "1.0") would
// change every probability the runner prints: floats are "%.9g" (float32 exact, and what the Python tests parse),
// non-finite ones null.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "bundle.h"

namespace bmf {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One classified text. Fields by the bundle's problem_type (Python's bigmodel_fast/eval/outputs.py), the bracketed
// ones by Options:
//   single_label: [text] label probabilities [ids] [logits]
//   multi_label:  [text] labels (those with probability >= their threshold) probabilities [ids] [logits]
//   regression:   [text] value (one target) or values {name: v} [ids] [logits]
// With long_text chunks, "windows" (every window's ids) replaces "ids".
struct ClassifyRow {
  const std::string& text;                   // the text after the input policy (valid UTF-8)
  int64_t label;                             // index of the largest logit
  const std::vector<double>& probabilities;  // (C,) softmax (single_label) / sigmoid (multi_label) / raw values
  const std::vector<int64_t>* ids;           // the model input ids, [CLS] ... [SEP] (the first window)
  size_t windows;                            // chunks: the text's windows, ids[0 .. windows); 0 otherwise
  const float* logits;                       // (C,), the mean over the windows
};

// One generation. Fields: [prompt] generated_ids text [prompt_ids] [logits].
struct Generation {
  std::string prompt;               // the prompt after the input policy
  std::vector<int64_t> prompt_ids;  // the prompt's ids (<s> for an empty prompt)
  std::vector<int> ids;             // generated ids (ending with </s> when it came)
  std::string text;                 // their decoded text (valid UTF-8)
  std::vector<float> first_logits;  // (V,) next-token logits after the prompt, with --print-logits
};

// One entity of a tagged text: its type and its code-point span [start, end) (what Python's str slicing counts),
// with the byte span of its text in the row's text.
struct TokenEntity {
  const std::string* type;
  int64_t start, end;
  size_t byte_start, byte_end;
};

// One tagged text (task "token"). Fields: [text] entities [words] [windows] [logits], each entity
// {"type", "start", "end", "text"} (eval/token_predict.py).
struct TokenRow {
  const std::string& text;                                // the text after the input policy (valid UTF-8)
  const std::vector<TokenEntity>& entities;               // in order
  const std::vector<std::pair<int64_t, int64_t>>& words;  // --print-words: code-point spans of the words
  const std::vector<int64_t>* windows;                    // --print-ids: the text's model inputs, windows[0 .. count)
  size_t count;
  const float* logits;  // --print-logits: (words, c), each word's logits (null when not asked for)
  size_t c;
};

void write_classify_line(std::string& out, const Options& opt, const Bundle& bundle, const ClassifyRow& row);
void write_token_line(std::string& out, const Options& opt, const TokenRow& row);
void write_lm_line(std::string& out, const Options& opt, const Generation& g);
// --tokenize: [text] ids.
void write_tokenize_line(std::string& out, const Options& opt, const std::string& text, const std::vector<int>& ids);
// --check: bundle format task arch max_len vocab_size labels [problem_type long_text] (classify)
// [problem_type token] (token) threads.
std::string describe_line(const Bundle& b, int vocab_size, int threads);

// --timing lines (milliseconds): one per classify batch / per generated prompt.
void write_classify_timing(std::FILE* f, int64_t batch, int64_t seq, double tokenize_ms, double forward_ms,
                           double total_ms);
void write_lm_timing(std::FILE* f, int64_t seq, int64_t new_tokens, double forward_ms, double total_ms);

}  // namespace bmf
