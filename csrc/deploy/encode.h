// Model inputs from texts: the classifier's [CLS] ids [SEP] sequence (tokenizing only a prefix of a long text), its
// head-tail and chunk windows, and right-padded batches. A bundle without cls or sep roles (GPT-2: special_ids null)
// gets its ids as they are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundle.h"
#include "model.h"
#include "tokenizer.h"

namespace bmf {

// [CLS] ids[:max_len-2] [SEP] of `text` (valid UTF-8) when the bundle has cls and sep ids, else ids[:max_len]:
// Python's encode_for_classifier.
std::vector<int64_t> classify_ids(const Tokenizer& tok, const Bundle& bundle, const std::string& text);

// The model inputs of `text` under the bundle's long_text mode (Python's encode_long, bigmodel_fast/data/long_text.py),
// each wrapped as classify_ids wraps its ids, budget = max_len minus the specials:
//   truncate:  one input, classify_ids (only a prefix of a long text is tokenized);
//   head-tail: one input, ids[:budget/4] + the last budget - budget/4 ids (the whole text is tokenized);
//   chunks:    windows ids[s : s + budget] for s = 0, step, 2 step, ... while s + budget < n, then s = n - budget
//              (step = long_text_stride, or budget/2 (at least 1) when 0); one window when n <= budget.
std::vector<std::vector<int64_t>> classify_windows(const Tokenizer& tok, const Bundle& bundle, const std::string& text);

// The first `need` ids of `text` without tokenizing all of a long text: encode a prefix of `start` bytes (cut back
// to a character boundary; the classifier uses 8 x max_len), double it until the prefix yields more than `need`
// ids whose first `need` equal those of the doubled prefix, or the whole text is covered.
std::vector<int> head_ids(const Tokenizer& tok, const std::string& text, size_t need, size_t start);

// seqs as one (B, S) batch, S the longest sequence, right-padded with pad_id (mask 0 on padding; a null pad id,
// -1, pads with 0).
Batch pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id);

}  // namespace bmf
