// The bundle's tokenizer behind one interface: SentencePiece (tokenizer.model, bmf's own) or a tokenizer.json
// (WordPiece / byte-level BPE of imported Hugging Face checkpoints, hf_tokenizer.h), chosen by bundle.json's
// tokenizer_file and checked against its special-token ids and vocabulary size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bundle.h"

struct BmfSpmApi;

namespace bmf {

class HfTokenizer;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` (valid UTF-8), no special tokens added: the Python Tokenizer.encode.
  virtual std::vector<int> encode(const std::string& text) const = 0;
  // Text of `ids`, special ids skipped: the Python Tokenizer.decode.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  virtual int vocab_size() const = 0;
};

// The tokenizer of `bundle` (a file name ending in .json: HfTokenizer, else SentencePiece). BundleError naming the
// file on anything unsupported, malformed or not fitting the bundle.
std::unique_ptr<Tokenizer> load_tokenizer(const Bundle& bundle);

// SentencePiece model of a bundle, checked against the bundle's special-token ids. SentencePiece itself lives in
// libbmf_spm.so (see spm_shim.h), loaded on first use from the runner's directory or $BMF_SPM_SHIM.
class SpmTokenizer : public Tokenizer {
 public:
  explicit SpmTokenizer(const Bundle& bundle);  // throws BundleError
  ~SpmTokenizer() override;
  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override;

 private:
  const BmfSpmApi* api_ = nullptr;
  void* sp_ = nullptr;
  std::vector<int64_t> specials_;
};

// A tokenizer.json tokenizer of a bundle: every non-null special id must be one of its ids, and its vocabulary
// must fit the model's (bundle.json vocab_size).
class JsonTokenizer : public Tokenizer {
 public:
  explicit JsonTokenizer(const Bundle& bundle);  // throws BundleError
  ~JsonTokenizer() override;
  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int vocab_size() const override;

 private:
  std::unique_ptr<HfTokenizer> tok_;
};

}  // namespace bmf
