#include "encode.h"

#include <algorithm>
#include <stdexcept>

#include "text.h"

namespace bmf {

namespace {

// A text with no ids and no cls/sep wrap (GPT-2) stands as [bos], else [eos], as data/classification.py's
// empty_input does: the model never sees a zero-length row.
void fill_empty(const Bundle& bundle, std::vector<int64_t>& seq) {
  if (!seq.empty()) return;
  const int64_t id = bundle.bos_id >= 0 ? bundle.bos_id : bundle.eos_id;
  if (id < 0) throw std::runtime_error("an empty text has no ids and the bundle has no cls/sep, bos or eos id");
  seq.push_back(id);
}

// [cls] part [sep] (bare part without cls/sep roles), an empty one filled as fill_empty says.
std::vector<int64_t> wrap_window(const Bundle& bundle, const int* begin, const int* end) {
  const bool wrap = bundle.cls_id >= 0 && bundle.sep_id >= 0;
  std::vector<int64_t> seq;
  seq.reserve((size_t)(end - begin) + 2);
  if (wrap) seq.push_back(bundle.cls_id);
  seq.insert(seq.end(), begin, end);
  if (wrap) seq.push_back(bundle.sep_id);
  fill_empty(bundle, seq);
  return seq;
}

}  // namespace

std::vector<int64_t> classify_ids(const Tokenizer& tok, const Bundle& bundle, const std::string& text) {
  const bool wrap = bundle.cls_id >= 0 && bundle.sep_id >= 0;
  const size_t need = (size_t)(bundle.max_len - (wrap ? 2 : 0));
  const std::vector<int> ids = head_ids(tok, text, need, 8 * (size_t)bundle.max_len);
  return wrap_window(bundle, ids.data(), ids.data() + ids.size());
}

std::vector<std::vector<int64_t>> classify_windows(const Tokenizer& tok, const Bundle& bundle,
                                                   const std::string& text) {
  if (bundle.long_text_mode == "truncate") return {classify_ids(tok, bundle, text)};
  const bool wrap = bundle.cls_id >= 0 && bundle.sep_id >= 0;
  const size_t budget = (size_t)(bundle.max_len - (wrap ? 2 : 0));
  const std::vector<int> ids = tok.encode(text);
  auto window = [&](const std::vector<int>& part) {
    return wrap_window(bundle, part.data(), part.data() + part.size());
  };
  const size_t n = ids.size();
  if (n <= budget) return {window(ids)};
  if (bundle.long_text_mode == "head-tail") {
    const size_t head = budget / 4;
    std::vector<int> part(ids.begin(), ids.begin() + head);
    part.insert(part.end(), ids.end() - (budget - head), ids.end());
    return {window(part)};
  }
  const size_t step = bundle.long_text_stride > 0 ? (size_t)bundle.long_text_stride : std::max<size_t>(1, budget / 2);
  std::vector<std::vector<int64_t>> out;
  auto add = [&](size_t s) { out.push_back(wrap_window(bundle, ids.data() + s, ids.data() + s + budget)); };
  for (size_t s = 0; s < n - budget; s += step) add(s);
  add(n - budget);
  return out;
}

std::vector<int> head_ids(const Tokenizer& tok, const std::string& text, size_t need, size_t start) {
  size_t size = start;
  if (text.size() <= size) {
    std::vector<int> ids = tok.encode(text);
    ids.resize(std::min(ids.size(), need));
    return ids;
  }
  std::vector<int> ids = tok.encode(text.substr(0, utf8_prefix_len(text, size)));
  for (;;) {
    const bool whole = 2 * size >= text.size();
    std::vector<int> next = tok.encode(whole ? text : text.substr(0, utf8_prefix_len(text, 2 * size)));
    if (ids.size() > need && next.size() >= need && std::equal(ids.begin(), ids.begin() + need, next.begin())) break;
    ids = std::move(next);
    size *= 2;
    if (whole) break;
  }
  ids.resize(std::min(ids.size(), need));
  return ids;
}

Batch pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id) {
  Batch b;
  b.batch = (int64_t)seqs.size();
  for (const auto& s : seqs) b.seq = std::max<int64_t>(b.seq, (int64_t)s.size());
  b.ids.assign(b.batch * b.seq, pad_id >= 0 ? pad_id : 0);
  b.mask.assign(b.batch * b.seq, 0);
  for (int64_t r = 0; r < b.batch; ++r) {
    std::copy(seqs[r].begin(), seqs[r].end(), b.ids.begin() + r * b.seq);
    std::fill(b.mask.begin() + r * b.seq, b.mask.begin() + r * b.seq + (int64_t)seqs[r].size(), 1);
  }
  return b;
}

}  // namespace bmf
