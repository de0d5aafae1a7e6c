// Model inputs from texts: the classifier's [CLS] ids [SEP] sequence (tokenizing only a prefix of a long text) and
// right-padded batches. A bundle without cls or sep roles (GPT-2: special_ids null) gets its ids as they are.
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

// The first `need` ids of `text` without tokenizing all of a long text: encode a prefix of `start` bytes (cut back
// to a character boundary; the classifier uses 8 x max_len), double it until the prefix yields more than `need`
// ids whose first `need` equal those of the doubled prefix, or the whole text is covered.
std::vector<int> head_ids(const Tokenizer& tok, const std::string& text, size_t need, size_t start);

// seqs as one (B, S) batch, S the longest sequence, right-padded with pad_id (mask 0 on padding; a null pad id,
// -1, pads with 0).
Batch pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id);

}  // namespace bmf
