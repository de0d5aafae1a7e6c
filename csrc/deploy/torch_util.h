// Helpers shared by the TorchScript and AOTInductor backends (includes ATen; keep out of the torch-free files).
#pragma once

#include <ATen/ATen.h>

#include "model.h"

namespace bmf {

// Input tensors viewing the batch's buffers (no copy; valid while `b` lives).
inline std::pair<at::Tensor, at::Tensor> batch_tensors(const Batch& b) {
  auto ids = at::from_blob(const_cast<int64_t*>(b.ids.data()), {b.batch, b.seq}, at::TensorOptions().dtype(at::kLong));
  auto mask =
      at::from_blob(const_cast<uint8_t*>(b.mask.data()), {b.batch, b.seq}, at::TensorOptions().dtype(at::kBool));
  return {ids, mask};
}

// Float32 contiguous copy of `logits`, gathered at b.gather positions when given ((B, S, V) -> (B, V)).
inline Output to_output(at::Tensor logits, const Batch& b) {
  Output out;
  if (!b.gather.empty()) {
    if (logits.dim() != 3 || logits.size(0) != (int64_t)b.gather.size())
      throw ModelError("model returned logits of shape " + std::to_string(logits.dim()) + "-D; expected (B, S, V)");
    const int64_t v = logits.size(2);
    out.shape = {logits.size(0), v};
    out.data.reserve(logits.size(0) * v);
    for (int64_t r = 0; r < logits.size(0); ++r) {
      at::Tensor row = logits.select(0, r).select(0, b.gather[r]).to(at::kFloat).contiguous();  // (V,)
      out.data.insert(out.data.end(), row.data_ptr<float>(), row.data_ptr<float>() + v);
    }
    return out;
  }
  logits = logits.to(at::kFloat).contiguous();
  out.shape.assign(logits.sizes().begin(), logits.sizes().end());
  out.data.assign(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  return out;
}

}  // namespace bmf
