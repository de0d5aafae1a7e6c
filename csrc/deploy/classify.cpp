#include "classify.h"

#include <cmath>

#include "encode.h"
#include "output.h"
#include "text.h"

namespace bmf {

void classify_batch(Session& s, const std::vector<std::string>& lines, std::string& out, std::FILE* timing) {
  const Clock::time_point t0 = Clock::now();
  std::vector<std::vector<int64_t>> seqs;
  std::vector<std::string> texts;
  seqs.reserve(lines.size());
  texts.reserve(lines.size());
  for (const auto& l : lines) {
    texts.push_back(sanitize_utf8(l));
    seqs.push_back(classify_ids(*s.tok, s.bundle, texts.back()));
  }
  const Batch b = pad(seqs, s.bundle.pad_id);
  const double tok_ms = ms_since(t0);
  const Clock::time_point t1 = Clock::now();
  const Output logits = s.model->forward(b);
  const double fwd_ms = ms_since(t1);
  const int64_t c = (int64_t)s.bundle.labels.size();
  if (logits.shape.size() != 2 || logits.shape[0] != b.batch || logits.shape[1] != c)
    throw ModelError("model returned logits of shape " + shape_str(logits.shape) + ", expected (" +
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
    write_classify_line(out, s.opt, s.bundle.labels, ClassifyRow{texts[r], best, p, seqs[r], z});
  }
  if (timing) write_classify_timing(timing, b.batch, b.seq, tok_ms, fwd_ms, ms_since(t0));
}

}  // namespace bmf
