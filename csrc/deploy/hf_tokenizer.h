// A tokenizer.json tokenizer (Hugging Face `tokenizers` format): WordPiece (BERT) and byte-level BPE (GPT-2,
// RoBERTa), with exactly the ids of Python's `Tokenizer.from_file(f).encode(text, add_special_tokens=False).ids`
// (with truncation and padding off: the runner truncates and pads itself).
//
// Supported: normalizer null | BertNormalizer {clean_text, handle_chinese_chars, strip_accents (null = follow
// lowercase), lowercase}; pre_tokenizer BertPreTokenizer | ByteLevel {add_prefix_space, use_regex}; model WordPiece
// {vocab, unk_token, continuing_subword_prefix, max_input_chars_per_word} | BPE {vocab, merges, unk_token,
// fuse_unk, ignore_merges; no dropout, byte_fallback or affixes}; added_tokens {content, id, lstrip, rstrip,
// normalized, special; not single_word}; decoder null | WordPiece | ByteLevel (for decode). Anything else is a
// TokenizerError naming the field. post_processor, truncation and padding are ignored.
//
// No LibTorch, no SentencePiece: this builds into the small bmf_tokenize tool as well as into bmf_runner.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "unicode.h"

namespace bmf {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BertNormalizerConfig {
  bool clean_text = true, handle_chinese_chars = true, strip_accents = true, lowercase = true;
};

struct AddedToken {
  std::string content;  // as matched (normalized tokens: after the normalizer)
  int id = 0;
  bool special = false, lstrip = false, rstrip = false, normalized = false;
};

// The subword model: ids of one pre-tokenized word (UTF-8).
class SubwordModel {
 public:
  virtual ~SubwordModel() = default;
  virtual void tokenize(const std::string& word, std::vector<int>& out) const = 0;
};

class HfTokenizer {
 public:
  // Parses `path` (a tokenizer.json); TokenizerError "PATH: field 'F': ..." on anything unsupported or malformed.
  static std::unique_ptr<HfTokenizer> load(const std::string& path);
  // Ids of `text` (valid UTF-8), no special tokens added (special tokens written in the text are matched).
  std::vector<int> encode(const std::string& text) const;
  // Text of `ids` with special added tokens skipped, through the decoder (ByteLevel / WordPiece).
  std::string decode(const std::vector<int>& ids) const;
  int vocab_size() const { return vocab_size_; }    // 1 + the largest id of the vocabulary and added tokens
  int token_to_id(const std::string& token) const;  // -1 when absent
  const std::string& model_type() const { return model_type_; }

 private:
  HfTokenizer() = default;
  U32 normalize(const U32& s) const;
  void pretokenize_and_model(const std::string& piece, std::vector<int>& out) const;
  void split_added(const std::string& s, const std::vector<AddedToken>& toks,
                   std::vector<std::pair<std::string, int>>& out) const;

  std::string path_;
  std::string model_type_;  // "WordPiece" | "BPE"
  bool has_normalizer_ = false;
  BertNormalizerConfig norm_;
  std::string pre_;  // "" | "BertPreTokenizer" | "ByteLevel"
  bool add_prefix_space_ = false, use_regex_ = true;
  std::string decoder_;  // "" | "WordPiece" | "ByteLevel"
  std::string wp_prefix_ = "##";
  bool wp_cleanup_ = true;
  std::vector<AddedToken> raw_added_, norm_added_;  // matched on the raw / the normalized text
  std::unordered_map<std::string, int> vocab_;      // model vocabulary + added tokens
  std::vector<std::string> id_to_token_;
  std::vector<bool> special_;  // by id
  int vocab_size_ = 0;
  std::unique_ptr<SubwordModel> model_;
};

// Model constructors (hf_models.cpp). `vocab` is the model's own vocabulary.
std::unique_ptr<SubwordModel> make_wordpiece(const std::unordered_map<std::string, int>& vocab, int unk_id,
                                             const std::string& prefix, size_t max_chars);
// merges: (left, right) pairs in rank order; a pair whose parts or concatenation are not in vocab is skipped.
std::unique_ptr<SubwordModel> make_bpe(const std::unordered_map<std::string, int>& vocab,
                                       const std::vector<std::pair<std::string, std::string>>& merges, int unk_id,
                                       bool fuse_unk, bool ignore_merges);

// Pre-tokenization (hf_pretok.cpp).
U32 bert_normalize(const U32& s, const BertNormalizerConfig& c);
void bert_pretokenize(const U32& s, std::vector<std::string>& words);
// ByteLevel: the GPT-2 regex split (when use_regex), each word's bytes mapped to the byte-level alphabet.
void byte_level_pretokenize(const U32& s, bool add_prefix_space, bool use_regex, std::vector<std::string>& words);
// The byte a byte-level alphabet character stands for, -1 when it is not one.
int byte_level_byte(char32_t c);

}  // namespace bmf
