#include "tokenizer.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "hf_tokenizer.h"
#include "spm_shim.h"

namespace bmf {

namespace {

// dlopen the SentencePiece shim once, in its own symbol scope (RTLD_LOCAL | RTLD_DEEPBIND; see spm_shim.h).
const BmfSpmApi* spm_api() {
  static const BmfSpmApi* api = nullptr;
  static std::string error;
  if (api) return api;
  if (!error.empty()) throw BundleError(error);
  std::string path;
  if (const char* env = std::getenv("BMF_SPM_SHIM"); env && *env) {
    path = env;
  } else {
    char exe[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string dir = ".";
    if (n > 0) {
      exe[n] = '\0';
      dir = exe;
      dir = dir.substr(0, dir.rfind('/'));
    }
    path = dir + "/libbmf_spm.so";
  }
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!h) {
    const char* why = ::dlerror();
    error = path + ": cannot load the SentencePiece shim (" + (why ? why : "?") +
            "); it is built next to bmf_runner (rebuild with `bmf export --build-runner`) or set BMF_SPM_SHIM";
    throw BundleError(error);
  }
  using Fn = const BmfSpmApi* (*)();
  auto fn = reinterpret_cast<Fn>(::dlsym(h, "bmf_spm_api"));
  if (!fn || !fn() || fn()->version != BMF_SPM_API_VERSION) {
    error = path + ": not a compatible SentencePiece shim (rebuild with `bmf export --build-runner`)";
    throw BundleError(error);
  }
  api = fn();
  return api;
}

}  // namespace

SpmTokenizer::SpmTokenizer(const Bundle& b) : api_(spm_api()) {
  char err[512] = {0};
  sp_ = api_->load(b.tokenizer_path.c_str(), err, sizeof err);
  if (!sp_) throw BundleError(b.tokenizer_path + ": not a valid SentencePiece model (" + err + ")");
  const int n = api_->piece_size(sp_);
  struct Special {
    const char* piece;
    int64_t id;
  } expected[] = {{"[PAD]", b.pad_id},   {"[UNK]", b.unk_id}, {"[CLS]", b.cls_id}, {"[SEP]", b.sep_id},
                  {"[MASK]", b.mask_id}, {"<s>", b.bos_id},   {"</s>", b.eos_id}};
  for (const auto& s : expected) {
    if (s.id < 0) continue;  // null in bundle.json: no such role
    if (s.id >= n || api_->piece_to_id(sp_, s.piece) != s.id)
      throw BundleError(b.tokenizer_path + ": special token " + s.piece + " is not at id " + std::to_string(s.id) +
                        " as bundle.json says; the tokenizer does not belong to this bundle");
    specials_.push_back(s.id);
  }
  if (b.vocab_size >= 0 && b.vocab_size != n)
    throw BundleError(b.tokenizer_path + ": " + std::to_string(n) + " pieces but bundle.json says vocab_size " +
                      std::to_string(b.vocab_size) + "; the tokenizer does not belong to this bundle");
}

SpmTokenizer::~SpmTokenizer() {
  if (sp_) api_->free_model(sp_);
}

std::vector<int> SpmTokenizer::encode(const std::string& text) const {
  char err[512] = {0};
  int* ids = nullptr;
  size_t n = 0;
  if (api_->encode(sp_, text.data(), text.size(), &ids, &n, err, sizeof err) != 0)
    throw std::runtime_error(std::string("SentencePiece encode failed: ") + err);
  std::vector<int> out(ids, ids + n);
  api_->free_buffer(ids);
  return out;
}

std::string SpmTokenizer::decode(const std::vector<int>& ids) const {
  std::vector<int> keep;
  keep.reserve(ids.size());
  const int n = vocab_size();
  for (int i : ids)
    if (std::find(specials_.begin(), specials_.end(), i) == specials_.end() && i >= 0 && i < n) keep.push_back(i);
  char err[512] = {0};
  char* text = nullptr;
  size_t len = 0;
  if (api_->decode(sp_, keep.data(), keep.size(), &text, &len, err, sizeof err) != 0)
    throw std::runtime_error(std::string("SentencePiece decode failed: ") + err);
  std::string out(text, len);
  api_->free_buffer(text);
  return out;
}

int SpmTokenizer::vocab_size() const { return api_->piece_size(sp_); }

JsonTokenizer::JsonTokenizer(const Bundle& b) {
  try {
    tok_ = HfTokenizer::load(b.tokenizer_path);
  } catch (const TokenizerError& e) {
    throw BundleError(e.what());
  }
  const int n = tok_->vocab_size();
  const std::pair<const char*, int64_t> roles[] = {{"pad", b.pad_id}, {"unk", b.unk_id},   {"cls", b.cls_id},
                                                   {"sep", b.sep_id}, {"mask", b.mask_id}, {"bos", b.bos_id},
                                                   {"eos", b.eos_id}};
  for (const auto& [role, id] : roles)
    if (id >= n)
      throw BundleError(b.tokenizer_path + ": bundle.json's special_ids." + role + " " + std::to_string(id) +
                        " is not an id of this tokenizer (" + std::to_string(n) +
                        " ids); the tokenizer does not belong to this bundle");
  if (b.vocab_size >= 0 && n > b.vocab_size)
    throw BundleError(b.tokenizer_path + ": " + std::to_string(n) + " token ids but bundle.json says vocab_size " +
                      std::to_string(b.vocab_size) + "; the tokenizer does not belong to this bundle");
}

JsonTokenizer::~JsonTokenizer() = default;

std::vector<int> JsonTokenizer::encode(const std::string& text) const { return tok_->encode(text); }

std::string JsonTokenizer::decode(const std::vector<int>& ids) const { return tok_->decode(ids); }

int JsonTokenizer::vocab_size() const { return tok_->vocab_size(); }

std::unique_ptr<Tokenizer> load_tokenizer(const Bundle& b) {
  const std::string& name = b.tokenizer_name;
  const bool json = name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0;
  if (json) return std::make_unique<JsonTokenizer>(b);
  return std::make_unique<SpmTokenizer>(b);
}

}  // namespace bmf
