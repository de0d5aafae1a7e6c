#include "classify.h"

#include <algorithm>
#include <cmath>

#include "encode.h"
#include "output.h"
#include "text.h"

namespace bmf {

namespace {

// The (C,) logits of each text: one forward per group of at most batch_size model inputs, then the mean over a
// text's windows (summed in double, like Python's pool_mean; one window is its logits as they are).
std::vector<std::vector<float>> text_logits(Session& s, const std::vector<std::vector<int64_t>>& seqs,
                                            const std::vector<size_t>& owner, size_t texts, double& fwd_ms,
                                            int64_t& longest) {
  const int64_t c = (int64_t)s.bundle.labels.size();
  std::vector<std::vector<double>> sums(texts, std::vector<double>(c, 0.0));
  std::vector<int64_t> count(texts, 0);
  const size_t group = (size_t)std::max<int64_t>(1, s.opt.batch_size);
  for (size_t from = 0; from < seqs.size(); from += group) {
    const size_t to = std::min(seqs.size(), from + group);
    const Batch b = pad(std::vector<std::vector<int64_t>>(seqs.begin() + from, seqs.begin() + to), s.bundle.pad_id);
    longest = std::max(longest, b.seq);
    const Clock::time_point t = Clock::now();
    const Output logits = s.model->forward(b);
    fwd_ms += ms_since(t);
    if (logits.shape.size() != 2 || logits.shape[0] != b.batch || logits.shape[1] != c)
      throw ModelError("model returned logits of shape " + shape_str(logits.shape) + ", expected (" +
                       std::to_string(b.batch) + ", " + std::to_string(c) + ")");
    for (int64_t r = 0; r < b.batch; ++r) {
      const size_t i = owner[from + r];
      for (int64_t k = 0; k < c; ++k) sums[i][k] += (double)logits.data[r * c + k];
      ++count[i];
    }
  }
  std::vector<std::vector<float>> out(texts, std::vector<float>(c));
  for (size_t i = 0; i < texts; ++i)
    for (int64_t k = 0; k < c; ++k) out[i][k] = (float)(sums[i][k] / (double)count[i]);
  return out;
}

// softmax (single_label) or per-label sigmoid rounded to float32 (multi_label, as Python's outputs.scores); the
// raw values for regression.
std::vector<double> scores(const std::string& problem_type, const std::vector<float>& z) {
  const size_t c = z.size();
  std::vector<double> p(c);
  if (problem_type == "regression") {
    for (size_t k = 0; k < c; ++k) p[k] = z[k];
  } else if (problem_type == "multi_label") {
    for (size_t k = 0; k < c; ++k) p[k] = (float)(1.0 / (1.0 + std::exp(-(double)z[k])));
  } else {
    double mx = -INFINITY;
    for (size_t k = 0; k < c; ++k) mx = std::max(mx, (double)z[k]);
    double sum = 0;
    for (size_t k = 0; k < c; ++k) sum += (p[k] = std::exp((double)z[k] - mx));
    for (size_t k = 0; k < c; ++k) p[k] /= sum;
  }
  return p;
}

}  // namespace

void classify_batch(Session& s, const std::vector<std::string>& lines, std::string& out, std::FILE* timing) {
  const Clock::time_point t0 = Clock::now();
  std::vector<std::vector<int64_t>> seqs;   // model inputs: one per text, or its windows (long_text chunks)
  std::vector<size_t> owner;                // model input -> text
  std::vector<size_t> first(lines.size());  // text -> its first model input
  std::vector<std::string> texts;
  texts.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    texts.push_back(sanitize_utf8(lines[i]));
    first[i] = seqs.size();
    for (auto& w : classify_windows(*s.tok, s.bundle, texts.back())) {
      seqs.push_back(std::move(w));
      owner.push_back(i);
    }
  }
  const double tok_ms = ms_since(t0);
  double fwd_ms = 0;
  int64_t longest = 0;
  const std::vector<std::vector<float>> logits = text_logits(s, seqs, owner, lines.size(), fwd_ms, longest);
  const bool chunks = s.bundle.long_text_mode == "chunks";
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<float>& z = logits[i];
    const std::vector<double> p = scores(s.bundle.problem_type, z);
    int64_t best = 0;
    for (size_t k = 0; k < z.size(); ++k)
      if (z[k] > z[best]) best = (int64_t)k;  // first maximum, like torch.argmax
    const size_t end = i + 1 < lines.size() ? first[i + 1] : seqs.size();
    write_classify_line(out, s.opt, s.bundle,
                        ClassifyRow{texts[i], best, p, &seqs[first[i]], chunks ? end - first[i] : 0, z.data()});
  }
  if (timing) write_classify_timing(timing, (int64_t)seqs.size(), longest, tok_ms, fwd_ms, ms_since(t0));
}

}  // namespace bmf
