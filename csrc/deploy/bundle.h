// A bundle directory written by `bmf export`: bundle.json + model (model.pt or model.pt2) + tokenizer.model.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct BmfSpmApi;

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
  std::string task;    // "classify" (logits (B, C)) | "lm" (logits (B, S, V))
  std::string arch;
  std::string model_name, tokenizer_name;  // as bundle.json names them (relative to dir, listed in manifest.json)
  std::string model_path, tokenizer_path;
  std::vector<std::string> labels;  // classify only
  int64_t max_len = 0;              // classify: longest input incl. [CLS]/[SEP]; lm: context window
  int64_t vocab_size = -1;          // -1 when bundle.json does not say
  int64_t pad_id = 0, unk_id = 1, cls_id = 2, sep_id = 3, mask_id = 4, bos_id = 5, eos_id = 6;
};

// Checks every file DIR/manifest.json lists (regular file, size, SHA-256) and returns the listed names. A missing,
// malformed or mismatching manifest is a BundleError naming the file. This catches corruption and half-written
// bundles, not attacks: whoever can replace model.pt can rewrite the manifest too (bundles are programs).
std::vector<std::string> verify_manifest(const std::string& dir);

// Verifies DIR/manifest.json, then reads and validates DIR/bundle.json and checks that the model and tokenizer
// files exist and are listed in the manifest. Nothing is loaded before the manifest checks out.
Bundle load_bundle(const std::string& dir);

// SentencePiece model of a bundle, checked against the bundle's special-token ids. SentencePiece itself lives in
// libbmf_spm.so (see spm_shim.h), loaded on first use from the runner's directory or $BMF_SPM_SHIM.
class Tokenizer {
 public:
  explicit Tokenizer(const Bundle& bundle);  // throws BundleError
  ~Tokenizer();
  // Ids of `text` (valid UTF-8), no special tokens added: the Python Tokenizer.encode.
  std::vector<int> encode(const std::string& text) const;
  // Text of `ids`, special ids skipped: the Python Tokenizer.decode.
  std::string decode(const std::vector<int>& ids) const;
  int vocab_size() const;

 private:
  const BmfSpmApi* api_ = nullptr;
  void* sp_ = nullptr;
  std::vector<int64_t> specials_;
};

}  // namespace bmf
