// TorchScript backend: torch::jit::load of the bundle's model.pt.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/python/update_graph_executor_opt.h>
#include <torch/csrc/jit/serialization/import.h>

#include "torch_util.h"

namespace bmf {

namespace {

class TorchScriptModel : public Model {
 public:
  explicit TorchScriptModel(torch::jit::Module m) : module_(std::move(m)) { module_.eval(); }

  Output forward(const Batch& b) override {
    try {
      c10::InferenceMode guard;
      auto [ids, mask] = batch_tensors(b);
      c10::IValue out = module_.forward({ids, mask});
      if (!out.isTensor())
        throw ModelError("model.pt forward returned " + out.tagKind() + ", expected a logits tensor");
      return to_output(out.toTensor(), b);
    } catch (const c10::Error& e) {
      throw ModelError(std::string("TorchScript forward failed: ") + e.what_without_backtrace());
    }
  }

 private:
  torch::jit::Module module_;
};

}  // namespace

std::unique_ptr<Model> load_torchscript_model(const std::string& path, bool jit_optimize) {
  // Off (the runner's default): the graph runs as scripted, with no profiling runs and no re-specialisation per
  // new input shape, which otherwise costs ~0.1-0.3 s for each new (batch, length) the first times it is seen.
  torch::jit::setGraphExecutorOptimize(jit_optimize);
  try {
    return std::make_unique<TorchScriptModel>(torch::jit::load(path, c10::Device(c10::kCPU)));
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    if (what.size() > 400) what = what.substr(0, 400) + "...";
    throw ModelError(path + ": cannot load the TorchScript model (" + what +
                     "); the file is corrupt or was not written by `bmf export --format torchscript`");
  }
}

void set_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

int get_threads() { return at::get_num_threads(); }

}  // namespace bmf
