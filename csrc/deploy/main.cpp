// bmf_runner: raw text in, JSON lines out, no Python. Loads a bundle written by `bmf export` (TorchScript model.pt or
// AOTInductor model.pt2, tokenizer.model, bundle.json) and, per input line:
//   task "classify": {"label": ..., "probabilities": {label: p, ...}}                       (N lines per forward)
//   task "lm":       {"generated_ids": [...], "text": "..."}   greedy or top-k generation, one line at a time
// Exit codes: 0 ok, 1 failure while running, 2 bad usage or a missing/corrupt/mismatched bundle.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "args.h"
#include "bundle.h"
#include "json.h"
#include "model.h"
#include "text.h"

namespace {

using bmf::Options;

void put_float(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  out += buf;
}

template <class T>
void put_ids(std::string& out, const std::vector<T>& ids) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(ids[i]);
  }
  out += ']';
}

void put_floats(std::string& out, const float* v, int64_t n) {
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    put_float(out, v[i]);
  }
  out += ']';
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

struct Runner {
  Options opt;
  bmf::Bundle bundle;
  std::unique_ptr<bmf::Tokenizer> tok;
  std::unique_ptr<bmf::Model> model;
  std::FILE* timing = nullptr;

  // Input ids of one text: [CLS] ids[:max_len-2] [SEP] (classify) / the prompt ids (lm).
  std::vector<int64_t> classify_ids(const std::string& text) const {
    std::vector<int> ids = head_ids(text, (size_t)(bundle.max_len - 2));
    std::vector<int64_t> seq;
    seq.reserve(ids.size() + 2);
    seq.push_back(bundle.cls_id);
    seq.insert(seq.end(), ids.begin(), ids.end());
    seq.push_back(bundle.sep_id);
    return seq;
  }

  // The first `need` ids of `text` without tokenizing all of a long text (Python: encode_for_classifier): encode a
  // prefix of 8 x (need + 2) bytes (cut back to a character boundary), double it until the prefix yields more than
  // `need` ids whose first `need` equal those of the doubled prefix, or the whole text is covered.
  std::vector<int> head_ids(const std::string& text, size_t need) const {
    size_t size = 8 * (need + 2);
    if (text.size() <= size) {
      std::vector<int> ids = tok->encode(text);
      ids.resize(std::min(ids.size(), need));
      return ids;
    }
    std::vector<int> ids = tok->encode(text.substr(0, bmf::utf8_prefix_len(text, size)));
    for (;;) {
      const bool whole = 2 * size >= text.size();
      std::vector<int> next = tok->encode(whole ? text : text.substr(0, bmf::utf8_prefix_len(text, 2 * size)));
      if (ids.size() > need && next.size() >= need && std::equal(ids.begin(), ids.begin() + need, next.begin())) break;
      ids = std::move(next);
      size *= 2;
      if (whole) break;
    }
    ids.resize(std::min(ids.size(), need));
    return ids;
  }

  static bmf::Batch pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id) {
    bmf::Batch b;
    b.batch = (int64_t)seqs.size();
    for (const auto& s : seqs) b.seq = std::max<int64_t>(b.seq, (int64_t)s.size());
    b.ids.assign(b.batch * b.seq, pad_id);
    b.mask.assign(b.batch * b.seq, 0);
    for (int64_t r = 0; r < b.batch; ++r) {
      std::copy(seqs[r].begin(), seqs[r].end(), b.ids.begin() + r * b.seq);
      std::fill(b.mask.begin() + r * b.seq, b.mask.begin() + r * b.seq + (int64_t)seqs[r].size(), 1);
    }
    return b;
  }

  // One forward on a tiny input: the model must load, run and fit the bundle (label count, vocabulary).
  void smoke_check() {
    bmf::Batch b = pad({{bundle.cls_id, bundle.sep_id}}, bundle.pad_id);
    const std::string name = bundle.model_path;
    if (bundle.task == "lm") b.gather = {1};
    bmf::Output out;
    try {
      out = model->forward(b);
    } catch (const bmf::ModelError& e) {
      throw bmf::BundleError(name + ": the model does not run on a [CLS] [SEP] input (" + e.what() + ")");
    }
    if (bundle.task == "classify") {
      if (out.shape.size() != 2 || out.shape[0] != 1 || out.shape[1] != (int64_t)bundle.labels.size())
        throw bmf::BundleError(name + ": the model returns logits of shape " + shape_str(out.shape) +
                               " for one text, but bundle.json lists " + std::to_string(bundle.labels.size()) +
                               " labels; the model does not belong to this bundle");
    } else if (out.shape.size() != 2 || out.shape[1] != tok->vocab_size()) {
      throw bmf::BundleError(name + ": the model returns next-token logits of shape " + shape_str(out.shape) +
                             " but the tokenizer has " + std::to_string(tok->vocab_size()) +
                             " pieces; the model does not belong to this bundle");
    }
  }

  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "(";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + ")";
  }

  void classify_batch(const std::vector<std::string>& lines, std::string& out) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int64_t>> seqs;
    std::vector<std::string> texts;
    seqs.reserve(lines.size());
    texts.reserve(lines.size());
    for (const auto& l : lines) {
      texts.push_back(bmf::sanitize_utf8(l));
      seqs.push_back(classify_ids(texts.back()));
    }
    bmf::Batch b = pad(seqs, bundle.pad_id);
    const double tok_ms = ms_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    bmf::Output logits = model->forward(b);
    const double fwd_ms = ms_since(t1);
    const int64_t c = (int64_t)bundle.labels.size();
    if (logits.shape.size() != 2 || logits.shape[0] != b.batch || logits.shape[1] != c)
      throw bmf::ModelError("model returned logits of shape " + shape_str(logits.shape) + ", expected (" +
                            std::to_string(b.batch) + ", " + std::to_string(c) + ")");
    std::vector<double> p(c);
    for (int64_t r = 0; r < b.batch; ++r) {
      const float* z = logits.data.data() + r * c;
      double mx = -INFINITY;
      for (int64_t k = 0; k < c; ++k) mx = std::max(mx, (double)z[k]);
      double sum = 0;
      for (int64_t k = 0; k < c; ++k) sum += (p[k] = std::exp((double)z[k] - mx));
      int64_t best = 0;
      for (int64_t k = 0; k < c; ++k) {
        p[k] /= sum;
        if (z[k] > z[best]) best = k;  // first maximum, like torch.argmax
      }
      out += '{';
      if (opt.echo) {
        out += "\"text\": ";
        out += bmf::json_quote(texts[r]);
        out += ", ";
      }
      out += "\"label\": ";
      out += bmf::json_quote(bundle.labels[best]);
      out += ", \"probabilities\": {";
      for (int64_t k = 0; k < c; ++k) {
        if (k) out += ", ";
        out += bmf::json_quote(bundle.labels[k]);
        out += ": ";
        put_float(out, p[k]);
      }
      out += '}';
      if (opt.print_ids) {
        out += ", \"ids\": ";
        put_ids(out, seqs[r]);
      }
      if (opt.print_logits) {
        out += ", \"logits\": ";
        put_floats(out, z, c);
      }
      out += "}\n";
    }
    if (timing)
      std::fprintf(timing, "{\"batch\": %lld, \"seq\": %lld, \"tokenize_ms\": %.4f, \"forward_ms\": %.4f, \"total_ms\": %.4f}\n",
                   (long long)b.batch, (long long)b.seq, tok_ms, fwd_ms, ms_since(t0));
  }

  int64_t choose(const float* z, int64_t v, std::mt19937_64& rng) const {
    if (opt.top_k <= 1) return std::max_element(z, z + v) - z;  // first maximum
    const int64_t k = std::min<int64_t>(opt.top_k, v);
    std::vector<int64_t> idx(v);
    for (int64_t i = 0; i < v; ++i) idx[i] = i;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int64_t a, int64_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    std::vector<double> w(k);
    for (int64_t i = 0; i < k; ++i) w[i] = std::exp(((double)z[idx[i]] - z[idx[0]]) / opt.temperature);
    std::discrete_distribution<int64_t> dist(w.begin(), w.end());
    return idx[dist(rng)];
  }

  void generate(const std::string& raw, std::string& out, std::mt19937_64& rng) {
    auto t0 = std::chrono::steady_clock::now();
    const std::string text = bmf::sanitize_utf8(raw);
    std::vector<int> p = tok->encode(text);
    std::vector<int64_t> ids(p.begin(), p.end());
    if (ids.empty()) ids.push_back(bundle.bos_id);  // an empty prompt starts from <s>
    const std::vector<int64_t> prompt = ids;
    std::vector<int> gen;
    std::vector<float> first_logits;
    const int64_t steps = std::max<int64_t>(opt.max_new_tokens, opt.print_logits ? 1 : 0);
    double fwd_ms = 0;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t start = std::max<int64_t>(0, (int64_t)ids.size() - bundle.max_len);  // context window
      bmf::Batch b = pad({std::vector<int64_t>(ids.begin() + start, ids.end())}, bundle.pad_id);
      b.gather = {b.seq - 1};
      auto t1 = std::chrono::steady_clock::now();
      bmf::Output logits = model->forward(b);  // (1, V)
      fwd_ms += ms_since(t1);
      const int64_t v = logits.shape[1];
      if (step == 0 && opt.print_logits) first_logits = logits.data;
      if (step >= opt.max_new_tokens) break;
      const int64_t next = choose(logits.data.data(), v, rng);
      gen.push_back((int)next);
      ids.push_back(next);
      if (next == bundle.eos_id) break;
    }
    out += '{';
    if (opt.echo) {
      out += "\"prompt\": ";
      out += bmf::json_quote(text);
      out += ", ";
    }
    out += "\"generated_ids\": ";
    put_ids(out, gen);
    out += ", \"text\": ";
    out += bmf::json_quote(bmf::sanitize_utf8(tok->decode(gen)));  // byte pieces may decode to partial UTF-8
    if (opt.print_ids) {
      out += ", \"prompt_ids\": ";
      put_ids(out, prompt);
    }
    if (opt.print_logits) {
      out += ", \"logits\": ";
      put_floats(out, first_logits.data(), (int64_t)first_logits.size());
    }
    out += "}\n";
    if (timing)
      std::fprintf(timing, "{\"batch\": 1, \"seq\": %lld, \"new_tokens\": %lld, \"forward_ms\": %.4f, \"total_ms\": %.4f}\n",
                   (long long)prompt.size(), (long long)gen.size(), fwd_ms, ms_since(t0));
  }

  void tokenize_line(const std::string& raw, std::string& out) const {
    const std::string text = bmf::sanitize_utf8(raw);
    out += '{';
    if (opt.echo) {
      out += "\"text\": ";
      out += bmf::json_quote(text);
      out += ", ";
    }
    out += "\"ids\": ";
    put_ids(out, tok->encode(text));
    out += "}\n";
  }

  void describe() const {
    std::string out = "{\"bundle\": " + bmf::json_quote(bundle.dir) + ", \"format\": " + bmf::json_quote(bundle.format) +
                      ", \"task\": " + bmf::json_quote(bundle.task) + ", \"arch\": " + bmf::json_quote(bundle.arch) +
                      ", \"max_len\": " + std::to_string(bundle.max_len) +
                      ", \"vocab_size\": " + std::to_string(tok->vocab_size()) + ", \"labels\": [";
    for (size_t i = 0; i < bundle.labels.size(); ++i) out += (i ? ", " : "") + bmf::json_quote(bundle.labels[i]);
    out += "], \"threads\": " + std::to_string(bmf::get_threads()) + "}\n";
    std::fputs(out.c_str(), stdout);
  }

  int run() {
    std::FILE* in = stdin;
    if (opt.input != "-") {
      in = std::fopen(opt.input.c_str(), "rb");
      if (!in) {
        std::fprintf(stderr, "bmf_runner: error: %s: cannot open input (%s)\n", opt.input.c_str(), std::strerror(errno));
        return 2;
      }
    }
    if (!opt.timing.empty()) {
      timing = std::fopen(opt.timing.c_str(), "w");
      if (!timing) {
        std::fprintf(stderr, "bmf_runner: error: %s: cannot write timings (%s)\n", opt.timing.c_str(), std::strerror(errno));
        return 2;
      }
    }
    bmf::LineReader reader(in, (size_t)opt.max_line_bytes);
    std::string line, out;
    std::vector<std::string> lines;
    int64_t line_no = 0;
    std::mt19937_64 rng(opt.seed);
    auto flush = [&]() {
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fflush(stdout);
      out.clear();
    };
    try {
      for (;;) {
        const bool more = reader.next(line);
        if (more) {
          ++line_no;
          if (opt.tokenize) {
            tokenize_line(line, out);
            if (out.size() > (1 << 16)) flush();
            continue;
          }
          if (bundle.task == "lm") {
            generate(line, out, rng);
            flush();
            continue;
          }
          lines.push_back(line);
        }
        // A batch is full, the input ended, or nothing more is waiting (interactive use: answer what we have).
        if (!lines.empty() && (!more || (int64_t)lines.size() == opt.batch_size || !reader.ready())) {
          classify_batch(lines, out);
          lines.clear();
          flush();
        }
        if (!more) break;
      }
      flush();
    } catch (const std::exception& e) {
      flush();
      std::fprintf(stderr, "bmf_runner: error: at input line %lld: %s\n", (long long)line_no, e.what());
      return 1;
    }
    if (timing) std::fclose(timing);
    if (in != stdin) std::fclose(in);
    return 0;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Runner r;
  r.opt = bmf::parse_args(argc, argv);
  try {
    r.bundle = bmf::load_bundle(r.opt.bundle);
    r.tok = std::make_unique<bmf::Tokenizer>(r.bundle);
    bmf::set_threads(r.opt.threads);
    try {
      r.model = r.bundle.format == "aoti" ? bmf::load_aoti_model(r.bundle.model_path)
                                          : bmf::load_torchscript_model(r.bundle.model_path, r.opt.jit_optimize);
    } catch (const bmf::ModelError& e) {
      throw bmf::BundleError(e.what());
    }
    r.smoke_check();
  } catch (const bmf::BundleError& e) {
    std::fprintf(stderr, "bmf_runner: error: bad bundle: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bmf_runner: error: bad bundle %s: %s\n", r.opt.bundle.c_str(), e.what());
    return 2;
  }
  if (r.opt.check) {
    r.describe();
    return 0;
  }
  return r.run();
}
