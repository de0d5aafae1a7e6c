// tokenizer.json loading and the encode pipeline of HF `tokenizers`: added tokens on the raw text, the normalizer,
// added tokens on the normalized text, the pre-tokenizer, the subword model.
#include "hf_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "json_read.h"

namespace bmf {

namespace {

// Field access with errors naming the field: "PATH: field 'model.vocab': expected an object, got an array".
struct Reader {
  std::string path;
  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw TokenizerError(path + ": field '" + field + "': " + why);
  }
  [[noreturn]] void unsupported(const std::string& field, const std::string& value, const char* expected) const {
    fail(field, "'" + value + "' is not supported (expected " + expected + ")");
  }
  template <class F>
  auto get(const std::string& field, F f) const -> decltype(f()) {
    try {
      return f();
    } catch (const JsonError& e) {
      fail(field, e.what());
    }
  }
  // Optional boolean `key` of `obj` (absent or null: `dflt`).
  bool flag(const Json& obj, const std::string& prefix, const char* key, bool dflt) const {
    const Json* v = json_find(obj, key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_boolean()) fail(prefix + key, "expected a boolean");
    return v->get<bool>();
  }
  std::string type_of(const Json& obj, const std::string& field) const {
    const Json* t = json_find(obj, "type");
    if (!t) fail(field + ".type", "missing");
    return get(field + ".type", [&] { return json_string(*t); });
  }
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw TokenizerError(path + ": cannot open the tokenizer file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool leading_space_end(const std::string& s, size_t from, size_t& end) {  // end of the whitespace run at `from`
  end = from;
  while (end < s.size()) {
    size_t i = end;
    const U32 c = utf8_decode(s.substr(i, std::min<size_t>(4, s.size() - i)));
    if (c.empty() || !is_white_space(c[0])) break;
    std::string one;
    utf8_append(one, c[0]);
    end += one.size();
  }
  return end > from;
}

size_t trailing_space_start(const std::string& s, size_t lo, size_t hi) {  // start of the whitespace run ending at hi
  const U32 cps = utf8_decode(s.substr(lo, hi - lo));
  size_t bytes = 0, k = cps.size();
  while (k > 0 && is_white_space(cps[k - 1])) {
    std::string one;
    utf8_append(one, cps[k - 1]);
    bytes += one.size();
    --k;
  }
  return hi - bytes;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::load(const std::string& path) {
  Reader r{path};
  Json j;
  try {
    j = parse_json(read_file(path));
  } catch (const JsonError& e) {
    throw TokenizerError(path + ": " + e.what());
  }
  if (!j.is_object()) throw TokenizerError(path + ": expected a JSON object (a tokenizer.json)");
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  t->path_ = path;

  // model
  const Json* model = json_find(j, "model");
  if (!model || !model->is_object()) r.fail("model", "missing or not an object");
  t->model_type_ = r.type_of(*model, "model");
  const Json* vocab = json_find(*model, "vocab");
  if (!vocab) r.fail("model.vocab", "missing");
  std::unordered_map<std::string, int> mvocab;
  r.get("model.vocab", [&] {
    for (const auto& [k, v] : json_object(*vocab)) mvocab.emplace(k, (int)json_int(v));
    return 0;
  });
  auto opt_string = [&](const char* key) -> std::string {
    const Json* v = json_find(*model, key);
    if (!v || v->is_null()) return "";
    return r.get(std::string("model.") + key, [&] { return json_string(*v); });
  };
  auto unk_id = [&](bool required) {
    const std::string unk = opt_string("unk_token");
    if (unk.empty()) {
      if (required) r.fail("model.unk_token", "missing");
      return -1;
    }
    auto it = mvocab.find(unk);
    if (it == mvocab.end()) r.fail("model.unk_token", "'" + unk + "' is not in model.vocab");
    return it->second;
  };
  if (t->model_type_ == "WordPiece") {
    const Json* mx = json_find(*model, "max_input_chars_per_word");
    const size_t max_chars =
        mx && !mx->is_null() ? (size_t)r.get("model.max_input_chars_per_word", [&] { return json_int(*mx); }) : 100;
    const Json* pf = json_find(*model, "continuing_subword_prefix");
    const std::string prefix = pf ? r.get("model.continuing_subword_prefix", [&] { return json_string(*pf); }) : "##";
    t->wp_prefix_ = prefix;
    t->model_ = make_wordpiece(mvocab, unk_id(true), prefix, max_chars);
  } else if (t->model_type_ == "BPE") {
    const Json* dropout = json_find(*model, "dropout");
    if (dropout && !dropout->is_null()) r.fail("model.dropout", "BPE dropout is not supported (expected null)");
    if (r.flag(*model, "model.", "byte_fallback", false))
      r.fail("model.byte_fallback", "true is not supported (expected false)");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (!opt_string(k).empty()) r.fail(std::string("model.") + k, "a BPE affix is not supported (expected null)");
    std::vector<std::pair<std::string, std::string>> merges;
    const Json* m = json_find(*model, "merges");
    if (!m) r.fail("model.merges", "missing");
    r.get("model.merges", [&] {
      for (const Json& e : json_array(*m)) {
        if (e.is_string()) {  // "a b" (tokenizers < 0.20)
          const std::string& s = json_string(e);
          const size_t sp = s.find(' ', 1);
          if (sp == std::string::npos) throw JsonError("merge '" + s + "' is not 'LEFT RIGHT'");
          merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        } else {  // ["a", "b"]
          const auto& pair = json_array(e);
          if (pair.size() != 2) throw JsonError("a merge needs two strings");
          merges.emplace_back(json_string(pair[0]), json_string(pair[1]));
        }
      }
      return 0;
    });
    t->model_ = make_bpe(mvocab, merges, unk_id(false), r.flag(*model, "model.", "fuse_unk", false),
                         r.flag(*model, "model.", "ignore_merges", false));
  } else {
    r.unsupported("model.type", t->model_type_, "WordPiece or BPE");
  }

  // normalizer
  const Json* norm = json_find(j, "normalizer");
  if (norm && !norm->is_null()) {
    const std::string type = r.type_of(*norm, "normalizer");
    if (type != "BertNormalizer") r.unsupported("normalizer.type", type, "BertNormalizer or null");
    t->has_normalizer_ = true;
    BertNormalizerConfig& c = t->norm_;
    c.clean_text = r.flag(*norm, "normalizer.", "clean_text", true);
    c.handle_chinese_chars = r.flag(*norm, "normalizer.", "handle_chinese_chars", true);
    c.lowercase = r.flag(*norm, "normalizer.", "lowercase", true);
    c.strip_accents = r.flag(*norm, "normalizer.", "strip_accents", c.lowercase);  // null: follow lowercase
  }

  // pre_tokenizer
  const Json* pre = json_find(j, "pre_tokenizer");
  if (pre && !pre->is_null()) {
    t->pre_ = r.type_of(*pre, "pre_tokenizer");
    if (t->pre_ == "ByteLevel") {
      t->add_prefix_space_ = r.flag(*pre, "pre_tokenizer.", "add_prefix_space", true);
      t->use_regex_ = r.flag(*pre, "pre_tokenizer.", "use_regex", true);
    } else if (t->pre_ != "BertPreTokenizer") {
      r.unsupported("pre_tokenizer.type", t->pre_, "BertPreTokenizer or ByteLevel");
    }
  }

  // decoder (decode only)
  const Json* dec = json_find(j, "decoder");
  if (dec && !dec->is_null()) {
    t->decoder_ = r.type_of(*dec, "decoder");
    if (t->decoder_ == "WordPiece") {
      if (const Json* p = json_find(*dec, "prefix"))
        t->wp_prefix_ = r.get("decoder.prefix", [&] { return json_string(*p); });
      t->wp_cleanup_ = r.flag(*dec, "decoder.", "cleanup", true);
    } else if (t->decoder_ != "ByteLevel") {
      r.unsupported("decoder.type", t->decoder_, "WordPiece, ByteLevel or null");
    }
  }

  // vocabulary incl. added tokens
  t->vocab_ = mvocab;
  int max_id = -1;
  for (const auto& [k, v] : mvocab) max_id = std::max(max_id, v);
  std::vector<AddedToken> added;
  if (const Json* at = json_find(j, "added_tokens"); at && !at->is_null()) {
    r.get("added_tokens", [&] {
      size_t i = 0;
      for (const Json& e : json_array(*at)) {
        const std::string f = "added_tokens[" + std::to_string(i++) + "].";
        AddedToken a;
        const Json* c = json_find(e, "content");
        const Json* id = json_find(e, "id");
        if (!c || !id) r.fail(f + "content", "an added token needs content and id");
        a.content = r.get(f + "content", [&] { return json_string(*c); });
        a.id = (int)r.get(f + "id", [&] { return json_int(*id); });
        if (a.id < 0) r.fail(f + "id", "expected a non-negative id");
        if (r.flag(e, f, "single_word", false)) r.fail(f + "single_word", "true is not supported (expected false)");
        a.special = r.flag(e, f, "special", false);
        a.lstrip = r.flag(e, f, "lstrip", false);
        a.rstrip = r.flag(e, f, "rstrip", false);
        a.normalized = r.flag(e, f, "normalized", !a.special);
        added.push_back(a);
      }
      return 0;
    });
  }
  for (const AddedToken& a : added) max_id = std::max(max_id, a.id);
  t->vocab_size_ = max_id + 1;
  t->id_to_token_.assign(t->vocab_size_, std::string());
  t->special_.assign(t->vocab_size_, false);
  for (const auto& [k, v] : mvocab)
    if (v >= 0) t->id_to_token_[v] = k;
  for (AddedToken a : added) {
    t->id_to_token_[a.id] = a.content;
    t->vocab_[a.content] = a.id;
    t->special_[a.id] = a.special;
    if (a.content.empty()) continue;
    if (a.normalized) {
      if (t->has_normalizer_) a.content = utf8_encode(bert_normalize(utf8_decode(a.content), t->norm_));
      if (!a.content.empty()) t->norm_added_.push_back(a);
    } else {
      t->raw_added_.push_back(a);
    }
  }
  // Leftmost-longest matching tries the longer tokens first.
  for (auto* v : {&t->raw_added_, &t->norm_added_})
    std::stable_sort(v->begin(), v->end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  return t;
}

int HfTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

U32 HfTokenizer::normalize(const U32& s) const { return has_normalizer_ ? bert_normalize(s, norm_) : s; }

// tokenizers' AddedVocabulary::find_matches: leftmost-longest matches of `toks` in s; lstrip / rstrip take the
// adjacent whitespace into the token. Pieces without a token get id -1.
void HfTokenizer::split_added(const std::string& s, const std::vector<AddedToken>& toks,
                              std::vector<std::pair<std::string, int>>& out) const {
  if (toks.empty()) {
    out.emplace_back(s, -1);
    return;
  }
  size_t done = 0;  // end of the last match
  for (size_t i = 0; i < s.size();) {
    const AddedToken* hit = nullptr;
    for (const AddedToken& a : toks)
      if (s.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i, stop = i + hit->content.size();
    if (hit->lstrip) start = std::max(trailing_space_start(s, done, start), done);
    if (hit->rstrip) leading_space_end(s, stop, stop);
    if (done < start) out.emplace_back(s.substr(done, start - done), -1);
    out.emplace_back(std::string(), hit->id);
    done = i = stop;
  }
  if (done < s.size() || out.empty()) out.emplace_back(s.substr(done), -1);
}

void HfTokenizer::pretokenize_and_model(const std::string& piece, std::vector<int>& out) const {
  std::vector<std::string> words;
  const U32 cps = utf8_decode(piece);
  if (pre_ == "BertPreTokenizer")
    bert_pretokenize(cps, words);
  else if (pre_ == "ByteLevel")
    byte_level_pretokenize(cps, add_prefix_space_, use_regex_, words);
  else if (!piece.empty())
    words.push_back(piece);
  for (const std::string& w : words) model_->tokenize(w, out);
}

std::vector<int> HfTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  std::vector<std::pair<std::string, int>> raw, normed;
  split_added(text, raw_added_, raw);
  for (const auto& [piece, id] : raw) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    normed.clear();
    split_added(has_normalizer_ ? utf8_encode(normalize(utf8_decode(piece))) : piece, norm_added_, normed);
    for (const auto& [p, id2] : normed) {
      if (id2 >= 0)
        ids.push_back(id2);
      else
        pretokenize_and_model(p, ids);
    }
  }
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int>& ids) const {
  std::vector<std::string> toks;
  for (int i : ids)
    if (i >= 0 && i < vocab_size_ && !special_[i]) toks.push_back(id_to_token_[i]);
  std::string out;
  if (decoder_ == "ByteLevel") {
    std::string joined;
    for (const auto& t : toks) joined += t;
    for (char32_t c : utf8_decode(joined)) {
      const int b = byte_level_byte(c);
      if (b >= 0)
        out.push_back((char)b);
      else
        utf8_append(out, c);
    }
    return out;
  }
  for (size_t k = 0; k < toks.size(); ++k) {  // WordPiece (and no decoder): pieces joined, "##" glued
    const std::string& t = toks[k];
    if (decoder_ == "WordPiece" && k > 0 && t.compare(0, wp_prefix_.size(), wp_prefix_) == 0)
      out += t.substr(wp_prefix_.size());
    else
      out += (k > 0 ? " " : "") + t;
  }
  if (decoder_ == "WordPiece" && wp_cleanup_) {
    static const std::pair<const char*, const char*> kCleanup[] = {
        {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
        {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kCleanup) {
      const std::string f = from, tt = to;
      for (size_t p = out.find(f); p != std::string::npos; p = out.find(f, p + tt.size())) out.replace(p, f.size(), tt);
    }
  }
  return out;
}

}  // namespace bmf
