// The bundle's SentencePiece tokenizer, checked against bundle.json's special-token ids and vocabulary size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundle.h"

struct BmfSpmApi;

namespace bmf {

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
