#include "bundle.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "json_read.h"
#include "sha256.h"

namespace bmf {

namespace {

bool is_file(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(const std::string& dir, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

const char* kHint = "; re-export the bundle with `bmf export --checkpoint CKPT --out DIR`";
constexpr int64_t kMaxManifestBytes = 16 << 20;

std::string read_small_file(const std::string& path, int64_t limit) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw BundleError(path + ": missing or not a regular file" + std::string(kHint));
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
  const Json* bytes = json_find(e, "bytes");
  const Json* sha = json_find(e, "sha256");
  if (!bytes || !sha || !sha->is_string() || !is_hex64(json_string(*sha)))
    throw BundleError(manifest + ": entry '" + name + "' needs bytes and a 64-digit hex sha256" + kHint);
  const std::string path = join(dir, name);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw BundleError(path + ": missing or not a regular file, but listed in manifest.json" + kHint);
  if ((int64_t)st.st_size != json_int(*bytes))
    throw BundleError(path + ": " + std::to_string((long long)st.st_size) + " bytes, manifest.json says " +
                      std::to_string(json_int(*bytes)) + " (truncated or damaged)" + kHint);
  std::string got;
  try {
    got = sha256_file(path);
  } catch (const std::runtime_error& err) {
    throw BundleError(err.what());
  }
  if (got != json_string(*sha))
    throw BundleError(path + ": SHA-256 does not match manifest.json (the file is corrupted or was replaced)" + kHint);
}

// problem_type, long_text {mode, stride} and thresholds of a classify bundle.json (`field` names what is read, for
// the caller's JsonError message); absent fields keep the defaults of Bundle.
void read_inference(const Json& j, const std::string& json_path, std::string& field, Bundle& b) {
  field = "problem_type";
  if (const Json* pt = json_find(j, field)) b.problem_type = json_string(*pt);
  if (b.problem_type != "single_label" && b.problem_type != "multi_label" && b.problem_type != "regression")
    throw BundleError(json_path + ": problem_type '" + b.problem_type +
                      "' is not supported (expected single_label, multi_label or regression)" + kHint);
  const size_t least = b.problem_type == "single_label" ? 2 : 1;
  if (b.labels.size() < least)
    throw BundleError(json_path + ": 'labels' needs at least " + std::to_string(least) + " name(s) for " +
                      b.problem_type + kHint);
  field = "long_text";
  if (const Json* lt = json_find(j, field)) {
    json_object(*lt);
    field = "long_text.mode";
    if (const Json* m = json_find(*lt, "mode")) b.long_text_mode = json_string(*m);
    field = "long_text.stride";
    if (const Json* st = json_find(*lt, "stride")) b.long_text_stride = json_int(*st);
  }
  if (b.long_text_mode != "truncate" && b.long_text_mode != "head-tail" && b.long_text_mode != "chunks")
    throw BundleError(json_path + ": long_text.mode '" + b.long_text_mode +
                      "' is not supported (expected truncate, head-tail or chunks)" + kHint);
  const int64_t budget = b.max_len - (b.cls_id >= 0 && b.sep_id >= 0 ? 2 : 0);
  if (b.long_text_stride < 0 || b.long_text_stride > budget)
    throw BundleError(json_path + ": long_text.stride " + std::to_string(b.long_text_stride) + " is not in [0, " +
                      std::to_string(budget) + "] (the text tokens of a window)" + kHint);
  field = "thresholds";
  b.thresholds.assign(b.labels.size(), 0.5);
  if (const Json* th = json_find(j, field); th && b.problem_type == "multi_label") {
    const Json::array_t& a = json_array(*th);
    if (a.size() != b.labels.size())
      throw BundleError(json_path + ": 'thresholds' has " + std::to_string(a.size()) + " values for " +
                        std::to_string(b.labels.size()) + " labels" + kHint);
    for (size_t k = 0; k < a.size(); ++k) {
      b.thresholds[k] = json_number(a[k]);
      if (!(b.thresholds[k] >= 0 && b.thresholds[k] <= 1))
        throw BundleError(json_path + ": thresholds[" + std::to_string(k) + "] is not in [0, 1]" + kHint);
    }
  }
}

// Python's str.isspace() (what data/token_tags.split_tag strips around an entity type).
bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// First / last code point of `s` (valid UTF-8, non-empty).
char32_t first_code_point(const std::string& s) {
  const unsigned char b = static_cast<unsigned char>(s[0]);
  const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len && k < s.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(s[k]) & 0x3F);
  return c;
}
char32_t last_code_point(const std::string& s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return first_code_point(s.substr(i));
}

// The labels and bundle.json "token" of a token-classification bundle (`field` names what is read, for the
// caller's JsonError message): labels "O" or "B-"/"I-" + a type (BIO), token.overlap >= 0, scheme "bio", words
// "bmf-words-1", boundary_id in [-1, vocab_size); max_len leaves room for a sub-token beside [CLS]/[SEP].
void read_token(const Json& j, const std::string& json_path, std::string& field, Bundle& b) {
  if (b.labels.empty()) throw BundleError(json_path + ": 'labels' needs at least one tag" + kHint);
  for (size_t k = 0; k < b.labels.size(); ++k) {
    const std::string& l = b.labels[k];
    const bool tagged = l.size() >= 3 && (l[0] == 'B' || l[0] == 'I') && l[1] == '-';
    if (l != "O" &&
        (!tagged || python_space(first_code_point(l.substr(2))) || python_space(last_code_point(l.substr(2)))))
      throw BundleError(json_path + ": labels[" + std::to_string(k) + "] '" + l +
                        "' is not a BIO tag (expected O, or B- or I- followed by an entity type without surrounding "
                        "whitespace, e.g. B-PER)" +
                        kHint);
  }
  field = "problem_type";
  if (const Json* pt = json_find(j, field); pt && json_string(*pt) != "token")
    throw BundleError(json_path + ": problem_type '" + json_string(*pt) + "' does not fit task token (expected token)" +
                      kHint);
  field = "token";
  const Json* t = json_find(j, field);
  if (!t) throw BundleError(json_path + ": missing field 'token' (overlap, scheme, words, boundary_id)" + kHint);
  json_object(*t);
  auto member = [&](const char* name) {
    field = std::string("token.") + name;
    const Json* v = json_find(*t, name);
    if (!v) throw BundleError(json_path + ": missing field '" + field + "'" + kHint);
    return v;
  };
  auto integer = [&](const char* name) {
    const Json* v = member(name);
    if (!v->is_number_integer())
      throw BundleError(json_path + ": field '" + field + "' must be an integer, got " + v->dump() + kHint);
    return json_int(*v);
  };
  b.token_overlap = integer("overlap");
  if (b.token_overlap < 0)
    throw BundleError(json_path + ": field 'token.overlap' must be an integer >= 0, got " +
                      std::to_string(b.token_overlap) + kHint);
  b.token_scheme = json_string(*member("scheme"));
  if (b.token_scheme != "bio")
    throw BundleError(json_path + ": field 'token.scheme' is '" + b.token_scheme + "', expected 'bio'" + kHint);
  b.token_words = json_string(*member("words"));
  if (b.token_words != "bmf-words-1")
    throw BundleError(json_path + ": field 'token.words' is '" + b.token_words +
                      "', expected 'bmf-words-1' (the word-splitting rule this runner implements)" + kHint);
  b.boundary_id = integer("boundary_id");
  if (b.boundary_id < -1 || (b.vocab_size >= 0 && b.boundary_id >= b.vocab_size))
    throw BundleError(json_path + ": field 'token.boundary_id' " + std::to_string(b.boundary_id) +
                      " is not an id in [-1, " + (b.vocab_size >= 0 ? std::to_string(b.vocab_size) : "vocab_size") +
                      ") (-1: none)" + kHint);
  const int64_t frame = b.cls_id >= 0 && b.sep_id >= 0 ? 2 : 0;
  if (b.max_len < frame + 1)
    throw BundleError(json_path + ": max_len " + std::to_string(b.max_len) +
                      " leaves no room for a sub-token beside the " + std::to_string(frame) +
                      " special tokens of each window" + kHint);
}

}  // namespace

std::vector<std::string> verify_manifest(const std::string& dir) {
  const std::string path = join(dir, "manifest.json");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    throw BundleError(path + ": missing; the bundle was not written completely by `bmf export`" + std::string(kHint));
  Json m;
  try {
    m = parse_json(read_small_file(path, kMaxManifestBytes));
  } catch (const JsonError& e) {
    throw BundleError(path + ": " + e.what() + kHint);
  }
  std::vector<std::string> names;
  try {
    const Json* format = json_find(m, "format");
    const Json* version = json_find(m, "version");
    const Json* files = json_find(m, "files");
    if (!format || !format->is_string() || json_string(*format) != "bmf-manifest" || !files || !files->is_object())
      throw BundleError(path + ": not a bmf manifest (expected format 'bmf-manifest' with files -> {bytes, sha256})" +
                        std::string(kHint));
    if (!version || !version->is_number() || json_number(*version) != 1)
      throw BundleError(path + ": manifest version is not 1" + std::string(kHint));
    for (const auto& [name, entry] : json_object(*files)) {
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
  if (!is_file(json_path))
    throw BundleError(json_path + ": missing; expected a bundle directory written by `bmf export`");
  const std::vector<std::string> listed = verify_manifest(dir);  // before anything of the bundle is parsed or loaded
  auto require_listed = [&](const std::string& name, const std::string& what) {
    if (std::find(listed.begin(), listed.end(), name) == listed.end())
      throw BundleError(join(dir, name) + ": the " + what + " is not listed in manifest.json" + kHint);
  };
  require_listed("bundle.json", "bundle description");
  Json j;
  try {
    j = parse_json(read_small_file(json_path, kMaxManifestBytes));
  } catch (const JsonError& e) {
    throw BundleError(json_path + ": " + e.what() + kHint);
  }
  if (!j.is_object()) throw BundleError(json_path + ": expected a JSON object" + kHint);

  Bundle b;
  b.dir = dir;
  std::string field;
  try {
    field = "bundle_version";
    const Json* v = json_find(j, field);
    if (!v) throw BundleError(json_path + ": missing field 'bundle_version'" + kHint);
    if (json_int(*v) != kBundleVersion)
      throw BundleError(json_path + ": bundle_version " + std::to_string(json_int(*v)) +
                        " is not supported (expected " + std::to_string(kBundleVersion) + ")" + kHint);
    // An optional string field: its value, or `fallback` when bundle.json does not have it.
    auto text = [&](const char* name, const std::string& fallback) {
      field = name;
      const Json* f = json_find(j, field);
      return f ? json_string(*f) : fallback;
    };
    b.format = text("format", "torchscript");
    if (b.format != "torchscript" && b.format != "aoti")
      throw BundleError(json_path + ": format '" + b.format + "' is not supported (expected torchscript or aoti)");
    b.task = text("task", "classify");
    if (b.task != "classify" && b.task != "lm" && b.task != "token")
      throw BundleError(json_path + ": task '" + b.task + "' is not supported (expected classify, lm or token)");
    b.arch = text("arch", "");
    b.model_name = text("model", b.format == "aoti" ? "model.pt2" : "model.pt");
    b.model_path = join(dir, b.model_name);
    // tokenizer_file (tokenizer.model or tokenizer.json); older bundles: "tokenizer", else tokenizer.model.
    b.tokenizer_name = text("tokenizer_file", text("tokenizer", "tokenizer.model"));
    b.tokenizer_path = join(dir, b.tokenizer_name);
    field = "max_len";
    const Json* ml = json_find(j, field);
    if (!ml) throw BundleError(json_path + ": missing field 'max_len'" + kHint);
    b.max_len = json_int(*ml);
    if (b.max_len < (b.task == "classify" ? 3 : 1))
      throw BundleError(json_path + ": max_len " + std::to_string(b.max_len) + " is too small" + kHint);
    field = "vocab_size";
    if (const Json* vs = json_find(j, field)) b.vocab_size = json_int(*vs);
    field = "labels";
    if (b.task == "classify" || b.task == "token") {
      const Json* labels = json_find(j, field);
      if (!labels) throw BundleError(json_path + ": missing field 'labels'" + kHint);
      for (const Json& l : json_array(*labels)) b.labels.push_back(json_string(l));  // UTF-8 checked by the parser
    }
    // special_ids: {role: id or null}; null (-1 here) when the tokenizer has no such role (GPT-2: no cls/sep).
    // Absent (bundles before imported checkpoints): the fixed ids of bmf's SentencePiece tokenizer.
    field = "special_ids";
    if (const Json* sp = json_find(j, field)) {
      json_object(*sp);
      auto id = [&](const char* name, int64_t& out, bool required) {
        field = std::string("special_ids.") + name;
        const Json* v = json_find(*sp, name);
        if (!v) {
          if (required) throw BundleError(json_path + ": missing field '" + field + "'" + kHint);
          return;
        }
        out = v->is_null() ? -1 : json_int(*v);
        if (out < -1) throw BundleError(json_path + ": field '" + field + "' must be an id >= 0 or null" + kHint);
      };
      id("pad", b.pad_id, true);
      id("unk", b.unk_id, false);
      id("cls", b.cls_id, true);
      id("sep", b.sep_id, true);
      id("mask", b.mask_id, false);
      id("bos", b.bos_id, false);
      id("eos", b.eos_id, false);
    }
    if (b.task == "classify") read_inference(j, json_path, field, b);  // after special_ids: the window budget
    if (b.task == "token") read_token(j, json_path, field, b);
  } catch (const JsonError& e) {
    throw BundleError(json_path + ": field '" + field + "': " + e.what() + kHint);
  }
  if (!is_file(b.model_path)) throw BundleError(b.model_path + ": model file missing" + kHint);
  if (!is_file(b.tokenizer_path)) throw BundleError(b.tokenizer_path + ": tokenizer model missing" + kHint);
  require_listed(b.model_name, "model");
  require_listed(b.tokenizer_name, "tokenizer");
  return b;
}

}  // namespace bmf
