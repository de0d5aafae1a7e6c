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
#include <vector>

#include "args.h"
#include "bundle.h"

namespace bmf {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One classified text. Fields: [text] label probabilities [ids] [logits] (the bracketed ones by Options).
struct ClassifyRow {
  const std::string& text;                   // the text after the input policy (valid UTF-8)
  int64_t label;                             // index of the most likely label
  const std::vector<double>& probabilities;  // (C,) softmax of the logits
  const std::vector<int64_t>& ids;           // model input ids, [CLS] ... [SEP]
  const float* logits;                       // (C,)
};

// One generation. Fields: [prompt] generated_ids text [prompt_ids] [logits].
struct Generation {
  std::string prompt;               // the prompt after the input policy
  std::vector<int64_t> prompt_ids;  // the prompt's ids (<s> for an empty prompt)
  std::vector<int> ids;             // generated ids (ending with </s> when it came)
  std::string text;                 // their decoded text (valid UTF-8)
  std::vector<float> first_logits;  // (V,) next-token logits after the prompt, with --print-logits
};

void write_classify_line(std::string& out, const Options& opt, const std::vector<std::string>& labels,
                         const ClassifyRow& row);
void write_lm_line(std::string& out, const Options& opt, const Generation& g);
// --tokenize: [text] ids.
void write_tokenize_line(std::string& out, const Options& opt, const std::string& text, const std::vector<int>& ids);
// --check: bundle format task arch max_len vocab_size labels threads.
std::string describe_line(const Bundle& b, int vocab_size, int threads);

// --timing lines (milliseconds): one per classify batch / per generated prompt.
void write_classify_timing(std::FILE* f, int64_t batch, int64_t seq, double tokenize_ms, double forward_ms,
                           double total_ms);
void write_lm_timing(std::FILE* f, int64_t seq, int64_t new_tokens, double forward_ms, double total_ms);

}  // namespace bmf
