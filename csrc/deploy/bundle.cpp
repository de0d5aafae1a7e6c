#include "bundle.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "json.h"
#include "sha256.h"
#include "spm_shim.h"
#include "text.h"

namespace bmf {

namespace {

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(const std::string& dir, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

const char* kHint = "; re-export the bundle with `bmf export --checkpoint CKPT --out DIR`";
constexpr int64_t kMaxManifestBytes = 16 << 20;

std::string read_small_file(const std::string& path, int64_t limit) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) throw BundleError(path + ": missing or not a regular file" + std::string(kHint));
  if (st.st_size > limit)
    throw BundleError(path + ": " + std::to_string((long long)st.st_size) + " bytes, more than the " +
                      std::to_string((long long)limit) + " a bundle description may have" + kHint);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool safe_name(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return name.find('\0') == std::string::npos;
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// One manifest entry: a regular file of the listed size and SHA-256.
void check_listed_file(const std::string& dir, const std::string& manifest, const std::string& name, const Json& e) {
  if (!safe_name(name)) throw BundleError(manifest + ": file name '" + name + "' points outside the bundle" + kHint);
  const Json* bytes = e.find("bytes");
  const Json* sha = e.find("sha256");
  if (!bytes || !sha || !sha->is_string() || !is_hex64(sha->as_string()))
    throw BundleError(manifest + ": entry '" + name + "' needs bytes and a 64-digit hex sha256" + kHint);
  const std::string path = join(dir, name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw BundleError(path + ": missing or not a regular file, but listed in manifest.json" + kHint);
  if ((int64_t)st.st_size != bytes->as_int())
    throw BundleError(path + ": " + std::to_string((long long)st.st_size) + " bytes, manifest.json says " +
                      std::to_string(bytes->as_int()) + " (truncated or damaged)" + kHint);
  std::string got;
  try {
    got = sha256_file(path);
  } catch (const std::runtime_error& err) {
    throw BundleError(err.what());
  }
  if (got != sha->as_string())
    throw BundleError(path + ": SHA-256 does not match manifest.json (the file is corrupted or was replaced)" + kHint);
}

}  // namespace

std::vector<std::string> verify_manifest(const std::string& dir) {
  const std::string path = join(dir, "manifest.json");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw BundleError(path + ": missing; the bundle was not written completely by `bmf export`" + std::string(kHint));
  Json m;
  try {
    m = Json::parse(read_small_file(path, kMaxManifestBytes));
  } catch (const JsonError& e) {
    throw BundleError(path + ": " + e.what() + kHint);
  }
  std::vector<std::string> names;
  try {
    const Json* format = m.find("format");
    const Json* version = m.find("version");
    const Json* files = m.find("files");
    if (!format || !format->is_string() || format->as_string() != "bmf-manifest" || !files || !files->is_object())
      throw BundleError(path + ": not a bmf manifest (expected format 'bmf-manifest' with files -> {bytes, sha256})" +
                        std::string(kHint));
    if (!version || !version->is_number() || version->as_number() != 1)
      throw BundleError(path + ": manifest version is not 1" + std::string(kHint));
    for (const auto& [name, entry] : files->as_object()) {
      check_listed_file(dir, path, name, entry);
      names.push_back(name);
    }
  } catch (const JsonError& e) {
    throw BundleError(path + ": " + e.what() + kHint);
  }
  return names;
}

Bundle load_bundle(const std::string& dir) {
  if (!is_dir(dir)) throw BundleError(dir + ": not a directory; expected a bundle directory written by `bmf export`");
  const std::string json_path = join(dir, "bundle.json");
  if (!is_file(json_path)) throw BundleError(json_path + ": missing; expected a bundle directory written by `bmf export`");
  const std::vector<std::string> listed = verify_manifest(dir);  // before anything of the bundle is parsed or loaded
  auto require_listed = [&](const std::string& name, const std::string& what) {
    if (std::find(listed.begin(), listed.end(), name) == listed.end())
      throw BundleError(join(dir, name) + ": the " + what + " is not listed in manifest.json" + kHint);
  };
  require_listed("bundle.json", "bundle description");
  Json j;
  try {
    j = Json::parse(read_small_file(json_path, kMaxManifestBytes));
  } catch (const JsonError& e) {
    throw BundleError(json_path + ": " + e.what() + kHint);
  }
  if (!j.is_object()) throw BundleError(json_path + ": expected a JSON object" + kHint);

  Bundle b;
  b.dir = dir;
  std::string field;
  try {
    field = "bundle_version";
    const Json* v = j.find(field);
    if (!v) throw BundleError(json_path + ": missing field 'bundle_version'" + kHint);
    if (v->as_int() != kBundleVersion)
      throw BundleError(json_path + ": bundle_version " + std::to_string(v->as_int()) + " is not supported (expected " +
                        std::to_string(kBundleVersion) + ")" + kHint);
    field = "format";
    b.format = j.has(field) ? j.find(field)->as_string() : "torchscript";
    if (b.format != "torchscript" && b.format != "aoti")
      throw BundleError(json_path + ": format '" + b.format + "' is not supported (expected torchscript or aoti)");
    field = "task";
    b.task = j.has(field) ? j.find(field)->as_string() : "classify";
    if (b.task != "classify" && b.task != "lm")
      throw BundleError(json_path + ": task '" + b.task + "' is not supported (expected classify or lm)");
    field = "arch";
    b.arch = j.has(field) ? j.find(field)->as_string() : "";
    field = "model";
    b.model_name = j.has(field) ? j.find(field)->as_string() : (b.format == "aoti" ? "model.pt2" : "model.pt");
    b.model_path = join(dir, b.model_name);
    field = "tokenizer";
    b.tokenizer_name = j.has(field) ? j.find(field)->as_string() : "tokenizer.model";
    b.tokenizer_path = join(dir, b.tokenizer_name);
    field = "max_len";
    const Json* ml = j.find(field);
    if (!ml) throw BundleError(json_path + ": missing field 'max_len'" + kHint);
    b.max_len = ml->as_int();
    if (b.max_len < (b.task == "classify" ? 3 : 1))
      throw BundleError(json_path + ": max_len " + std::to_string(b.max_len) + " is too small" + kHint);
    field = "vocab_size";
    if (j.has(field)) b.vocab_size = j.find(field)->as_int();
    field = "labels";
    if (b.task == "classify") {
      const Json* labels = j.find(field);
      if (!labels) throw BundleError(json_path + ": missing field 'labels'" + kHint);
      for (const Json& l : labels->as_array()) b.labels.push_back(sanitize_utf8(l.as_string()));  // valid JSON out
      if (b.labels.size() < 2) throw BundleError(json_path + ": 'labels' needs at least two names" + kHint);
    }
    field = "special_ids";
    const Json* sp = j.find(field);
    if (!sp) throw BundleError(json_path + ": missing field 'special_ids'" + kHint);
    sp->as_object();
    auto id = [&](const char* name, int64_t& out, bool required) {
      field = std::string("special_ids.") + name;
      const Json* v = sp->find(name);
      if (!v) {
        if (required) throw BundleError(json_path + ": missing field '" + field + "'" + kHint);
        return;
      }
      out = v->as_int();
    };
    id("pad", b.pad_id, true);
    id("unk", b.unk_id, false);
    id("cls", b.cls_id, true);
    id("sep", b.sep_id, true);
    id("mask", b.mask_id, false);
    id("bos", b.bos_id, false);
    id("eos", b.eos_id, false);
  } catch (const JsonError& e) {
    throw BundleError(json_path + ": field '" + field + "': " + e.what() + kHint);
  }
  if (!is_file(b.model_path)) throw BundleError(b.model_path + ": model file missing" + kHint);
  if (!is_file(b.tokenizer_path)) throw BundleError(b.tokenizer_path + ": tokenizer model missing" + kHint);
  require_listed(b.model_name, "model");
  require_listed(b.tokenizer_name, "tokenizer");
  return b;
}

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

Tokenizer::Tokenizer(const Bundle& b) : api_(spm_api()) {
  char err[512] = {0};
  sp_ = api_->load(b.tokenizer_path.c_str(), err, sizeof err);
  if (!sp_) throw BundleError(b.tokenizer_path + ": not a valid SentencePiece model (" + err + ")");
  const int n = api_->piece_size(sp_);
  struct Special {
    const char* piece;
    int64_t id;
  } expected[] = {{"[PAD]", b.pad_id}, {"[UNK]", b.unk_id}, {"[CLS]", b.cls_id}, {"[SEP]", b.sep_id},
                  {"[MASK]", b.mask_id}, {"<s>", b.bos_id}, {"</s>", b.eos_id}};
  for (const auto& s : expected) {
    if (s.id < 0 || s.id >= n || api_->piece_to_id(sp_, s.piece) != s.id)
      throw BundleError(b.tokenizer_path + ": special token " + s.piece + " is not at id " + std::to_string(s.id) +
                        " as bundle.json says; the tokenizer does not belong to this bundle");
    specials_.push_back(s.id);
  }
  if (b.vocab_size >= 0 && b.vocab_size != n)
    throw BundleError(b.tokenizer_path + ": " + std::to_string(n) + " pieces but bundle.json says vocab_size " +
                      std::to_string(b.vocab_size) + "; the tokenizer does not belong to this bundle");
}

Tokenizer::~Tokenizer() {
  if (sp_) api_->free_model(sp_);
}

std::vector<int> Tokenizer::encode(const std::string& text) const {
  char err[512] = {0};
  int* ids = nullptr;
  size_t n = 0;
  if (api_->encode(sp_, text.data(), text.size(), &ids, &n, err, sizeof err) != 0)
    throw std::runtime_error(std::string("SentencePiece encode failed: ") + err);
  std::vector<int> out(ids, ids + n);
  api_->free_buffer(ids);
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
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

int Tokenizer::vocab_size() const { return api_->piece_size(sp_); }

}  // namespace bmf
