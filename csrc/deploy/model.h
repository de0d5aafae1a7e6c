// The exported model behind a small, torch-free interface (so only the two backend files include LibTorch).
//
// Every bundle model has the signature  forward(input_ids (B, S) int64, attention_mask (B, S) bool) -> logits,
// with logits (B, C) for task "classify" and (B, S, V) for task "lm".
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bmf {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Batch {
  int64_t batch = 0, seq = 0;
  std::vector<int64_t> ids;   // (B, S) row-major, right-padded with pad_id
  std::vector<uint8_t> mask;  // (B, S), 1 = real token
  // For "lm": when non-empty, return only the logits at these positions (one per row): (B, V).
  std::vector<int64_t> gather;
};

struct Output {
  std::vector<float> data;  // row-major float32
  std::vector<int64_t> shape;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual Output forward(const Batch& batch) = 0;  // throws ModelError
};

// Loaders throw ModelError with a message naming the file.
// ts_model.cpp (torch::jit::load). jit_optimize: TorchScript's profiling graph executor (specialises and
// re-optimises per input shape); false runs the scripted graph as is, which has steady latency.
std::unique_ptr<Model> load_torchscript_model(const std::string& path, bool jit_optimize);
std::unique_ptr<Model> load_aoti_model(const std::string& path);  // aoti_model.cpp (AOTIModelPackageLoader)

// "(2, 3)": a shape for error messages.
inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string r = "(";
  for (size_t i = 0; i < shape.size(); ++i) r += (i ? ", " : "") + std::to_string(shape[i]);
  return r + ")";
}

// Intra-op threads for LibTorch (and OpenMP); <= 0 keeps LibTorch's default (all cores).
void set_threads(int threads);
int get_threads();

}  // namespace bmf
