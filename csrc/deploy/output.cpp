#include "output.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "text.h"

namespace bmf {

namespace {

// `s` (valid UTF-8) as a JSON string literal. nlohmann escapes ", \ and U+0000..U+001F; U+007F is escaped here
// too, as the runner always has (a raw 0x7F byte is only ever that character in UTF-8).
void put_string(std::string& out, const std::string& s) {
  const std::string q = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  size_t from = 0;
  for (size_t at = q.find('\x7f'); at != std::string::npos; at = q.find('\x7f', from)) {
    out.append(q, from, at - from);
    out += "\\u007f";
    from = at + 1;
  }
  out.append(q, from, std::string::npos);
}

void put_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  out += buf;
}

template <class T>
void put_ints(std::string& out, const std::vector<T>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(v[i]);
  }
  out += ']';
}

void put_floats(std::string& out, const float* v, size_t n) {
  out += '[';
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    put_number(out, v[i]);
  }
  out += ']';
}

// Writes "{", then `"key": ` before each value (", " between them); close() writes "}".
class Object {
 public:
  explicit Object(std::string& out) : out_(out) { out_ += '{'; }
  std::string& key(const std::string& k) {
    if (n_++) out_ += ", ";
    put_string(out_, k);
    out_ += ": ";
    return out_;
  }
  void close() { out_ += '}'; }

 private:
  std::string& out_;
  int n_ = 0;
};

}  // namespace

void write_classify_line(std::string& out, const Options& opt, const Bundle& bundle, const ClassifyRow& row) {
  const std::vector<std::string>& labels = bundle.labels;
  const size_t c = labels.size();
  bool finite = true;
  for (size_t k = 0; k < c; ++k) finite = finite && std::isfinite(row.probabilities[k]);
  Object o(out);
  if (opt.echo) put_string(o.key("text"), row.text);
  if (bundle.problem_type == "regression") {
    if (c == 1) {
      put_number(o.key("value"), row.probabilities[0]);
    } else {
      Object v(o.key("values"));
      for (size_t k = 0; k < c; ++k) put_number(v.key(labels[k]), row.probabilities[k]);
      v.close();
    }
  } else {
    if (bundle.problem_type == "multi_label") {
      std::string& on = o.key("labels");
      if (!finite) {
        on += "null";
      } else {
        on += '[';
        for (size_t k = 0, n = 0; k < c; ++k) {
          if (!(row.probabilities[k] >= bundle.thresholds[k])) continue;
          if (n++) on += ", ";
          put_string(on, labels[k]);
        }
        on += ']';
      }
    } else {
      put_string(o.key("label"), labels[row.label]);
    }
    Object p(o.key("probabilities"));
    for (size_t k = 0; k < c; ++k) put_number(p.key(labels[k]), row.probabilities[k]);
    p.close();
  }
  if (opt.print_ids && row.windows == 0) put_ints(o.key("ids"), *row.ids);
  if (opt.print_ids && row.windows > 0) {
    std::string& w = o.key("windows");
    w += '[';
    for (size_t i = 0; i < row.windows; ++i) {
      if (i) w += ", ";
      put_ints(w, row.ids[i]);
    }
    w += ']';
  }
  if (opt.print_logits) put_floats(o.key("logits"), row.logits, c);
  o.close();
  out += '\n';
}

void write_token_line(std::string& out, const Options& opt, const TokenRow& row) {
  Object o(out);
  if (opt.echo) put_string(o.key("text"), row.text);
  std::string& es = o.key("entities");
  es += '[';
  for (size_t i = 0; i < row.entities.size(); ++i) {
    const TokenEntity& e = row.entities[i];
    if (i) es += ", ";
    Object eo(es);
    put_string(eo.key("type"), *e.type);
    eo.key("start") += std::to_string(e.start);
    eo.key("end") += std::to_string(e.end);
    put_string(eo.key("text"), row.text.substr(e.byte_start, e.byte_end - e.byte_start));
    eo.close();
  }
  es += ']';
  if (opt.print_words) {
    std::string& ws = o.key("words");
    ws += '[';
    for (size_t i = 0; i < row.words.size(); ++i) {
      if (i) ws += ", ";
      ws += '[' + std::to_string(row.words[i].first) + ", " + std::to_string(row.words[i].second) + ']';
    }
    ws += ']';
  }
  if (opt.print_ids) {
    std::string& w = o.key("windows");
    w += '[';
    for (size_t i = 0; i < row.count; ++i) {
      if (i) w += ", ";
      put_ints(w, row.windows[i]);
    }
    w += ']';
  }
  if (opt.print_logits) {
    std::string& l = o.key("logits");
    l += '[';
    for (size_t i = 0; row.logits && i < row.words.size(); ++i) {
      if (i) l += ", ";
      put_floats(l, row.logits + i * row.c, row.c);
    }
    l += ']';
  }
  o.close();
  out += '\n';
}

void write_lm_line(std::string& out, const Options& opt, const Generation& g) {
  Object o(out);
  if (opt.echo) put_string(o.key("prompt"), g.prompt);
  put_ints(o.key("generated_ids"), g.ids);
  put_string(o.key("text"), g.text);
  if (opt.print_ids) put_ints(o.key("prompt_ids"), g.prompt_ids);
  if (opt.print_logits) put_floats(o.key("logits"), g.first_logits.data(), g.first_logits.size());
  o.close();
  out += '\n';
}

void write_tokenize_line(std::string& out, const Options& opt, const std::string& text, const std::vector<int>& ids) {
  Object o(out);
  if (opt.echo) put_string(o.key("text"), text);
  put_ints(o.key("ids"), ids);
  o.close();
  out += '\n';
}

std::string describe_line(const Bundle& b, int vocab_size, int threads) {
  std::string out;
  Object o(out);
  put_string(o.key("bundle"), sanitize_utf8(b.dir));  // a command-line path: any bytes
  put_string(o.key("format"), b.format);
  put_string(o.key("task"), b.task);
  put_string(o.key("arch"), b.arch);
  o.key("max_len") += std::to_string(b.max_len);
  o.key("vocab_size") += std::to_string(vocab_size);
  std::string& labels = o.key("labels");
  labels += '[';
  for (size_t i = 0; i < b.labels.size(); ++i) {
    if (i) labels += ", ";
    put_string(labels, b.labels[i]);
  }
  labels += ']';
  if (b.task == "classify") {
    put_string(o.key("problem_type"), b.problem_type);
    Object lt(o.key("long_text"));
    put_string(lt.key("mode"), b.long_text_mode);
    lt.key("stride") += std::to_string(b.long_text_stride);
    lt.close();
  } else if (b.task == "token") {
    put_string(o.key("problem_type"), "token");
    Object t(o.key("token"));
    t.key("overlap") += std::to_string(b.token_overlap);
    put_string(t.key("scheme"), b.token_scheme);
    put_string(t.key("words"), b.token_words);
    t.key("boundary_id") += std::to_string(b.boundary_id);
    t.close();
  }
  o.key("threads") += std::to_string(threads);
  o.close();
  return out + '\n';
}

void write_classify_timing(std::FILE* f, int64_t batch, int64_t seq, double tokenize_ms, double forward_ms,
                           double total_ms) {
  std::fprintf(f, "{\"batch\": %lld, \"seq\": %lld, \"tokenize_ms\": %.4f, \"forward_ms\": %.4f, \"total_ms\": %.4f}\n",
               (long long)batch, (long long)seq, tokenize_ms, forward_ms, total_ms);
}

void write_lm_timing(std::FILE* f, int64_t seq, int64_t new_tokens, double forward_ms, double total_ms) {
  std::fprintf(f, "{\"batch\": 1, \"seq\": %lld, \"new_tokens\": %lld, \"forward_ms\": %.4f, \"total_ms\": %.4f}\n",
               (long long)seq, (long long)new_tokens, forward_ms, total_ms);
}

}  // namespace bmf
