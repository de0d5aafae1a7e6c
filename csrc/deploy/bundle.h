// A bundle directory written by `bmf export`: bundle.json + model (model.pt or model.pt2) + tokenizer (tokenizer.model
// or tokenizer.json, bundle.json's tokenizer_file),
// checked against its manifest.json (the tokenizer is in tokenizer.h, the model behind model.h).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bmf {

// Anything wrong with the bundle (missing files, bad bundle.json, model that does not fit): exit code 2.
class BundleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kBundleVersion = 1;

struct Bundle {
  std::string dir;
  std::string format;  // "torchscript" | "aoti"
  std::string task;    // "classify" (logits (B, C)) | "lm" (logits (B, S, V)) | "token" (logits (B, S, C))
  std::string arch;
  std::string model_name, tokenizer_name;  // as bundle.json names them (relative to dir, listed in manifest.json)
  std::string model_path, tokenizer_path;
  std::vector<std::string> labels;  // classify, token: one name per logit (token: tags "O", "B-TYPE", "I-TYPE")
  // classify: what the logits mean ("single_label" softmax + argmax, "multi_label" sigmoid + thresholds,
  // "regression" raw values) and how a text longer than max_len is fed ("truncate", "head-tail" or "chunks" with
  // long_text_stride, 0 = half a window): bundle.json "problem_type", "long_text", "thresholds" (absent: the old
  // behaviour, single_label / truncate / 0.5 per label).
  std::string problem_type = "single_label";
  std::string long_text_mode = "truncate";
  int64_t long_text_stride = 0;
  std::vector<double> thresholds;  // multi_label: one per label
  // token: bundle.json "token" {overlap, scheme, words, boundary_id}: windows of max_len (incl. [CLS]/[SEP])
  // overlapping by overlap sub-tokens (at most half a window), tags read as BIO, words split by the "bmf-words-1"
  // rule (token.h), and the id of SentencePiece's bare word-boundary piece dropped at a word's start (-1: none).
  int64_t token_overlap = 0;
  std::string token_scheme = "bio", token_words = "bmf-words-1";
  int64_t boundary_id = -1;
  int64_t max_len = 0;      // classify, token: longest input incl. [CLS]/[SEP]; lm: context window
  int64_t vocab_size = -1;  // -1 when bundle.json does not say
  // special_ids of bundle.json; -1 where it says null (no such role). Defaults: bmf's SentencePiece ids.
  int64_t pad_id = 0, unk_id = 1, cls_id = 2, sep_id = 3, mask_id = 4, bos_id = 5, eos_id = 6;
};

// Checks every file DIR/manifest.json lists (regular file, size, SHA-256) and returns the listed names. A missing,
// malformed or mismatching manifest is a BundleError naming the file. This catches corruption and half-written
// bundles, not attacks: whoever can replace model.pt can rewrite the manifest too (bundles are programs).
std::vector<std::string> verify_manifest(const std::string& dir);

// Verifies DIR/manifest.json, then reads and validates DIR/bundle.json and checks that the model and tokenizer
// files exist and are listed in the manifest. Nothing is loaded before the manifest checks out.
Bundle load_bundle(const std::string& dir);

}  // namespace bmf
