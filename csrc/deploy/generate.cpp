#include "generate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "encode.h"
#include "output.h"
#include "text.h"

namespace bmf {

namespace {

// The next id from logits z (V,): the first maximum (top_k 1), else a draw from the top_k most likely ids with
// weights exp((z - z_max) / temperature).
int64_t choose(const Options& opt, const float* z, int64_t v, std::mt19937_64& rng) {
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

}  // namespace

void generate(Session& s, const std::string& raw, std::mt19937_64& rng, std::string& out, std::FILE* timing) {
  const Options& opt = s.opt;
  const Bundle& bundle = s.bundle;
  const Clock::time_point t0 = Clock::now();
  Generation g;
  g.prompt = sanitize_utf8(raw);
  const std::vector<int> p = s.tok->encode(g.prompt);
  g.prompt_ids.assign(p.begin(), p.end());
  if (g.prompt_ids.empty())  // an empty prompt starts from <s> (GPT-2: <|endoftext|>, its bos and eos)
    g.prompt_ids.push_back(bundle.bos_id >= 0 ? bundle.bos_id : bundle.eos_id >= 0 ? bundle.eos_id : 0);
  std::vector<int64_t> ids = g.prompt_ids;
  const int64_t steps = std::max<int64_t>(opt.max_new_tokens, opt.print_logits ? 1 : 0);
  double fwd_ms = 0;
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t start = std::max<int64_t>(0, (int64_t)ids.size() - bundle.max_len);  // context window
    Batch b = pad({std::vector<int64_t>(ids.begin() + start, ids.end())}, bundle.pad_id);
    b.gather = {b.seq - 1};
    const Clock::time_point t1 = Clock::now();
    Output logits = s.model->forward(b);  // (1, V)
    fwd_ms += ms_since(t1);
    if (step == 0 && opt.print_logits) g.first_logits = logits.data;
    if (step >= opt.max_new_tokens) break;
    const int64_t next = choose(opt, logits.data.data(), logits.shape[1], rng);
    g.ids.push_back((int)next);
    ids.push_back(next);
    if (next == bundle.eos_id) break;
  }
  g.text = sanitize_utf8(s.tok->decode(g.ids));  // byte pieces may decode to partial UTF-8
  write_lm_line(out, opt, g);
  if (timing) write_lm_timing(timing, (int64_t)g.prompt_ids.size(), (int64_t)g.ids.size(), fwd_ms, ms_since(t0));
}

}  // namespace bmf
