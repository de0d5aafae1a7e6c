// AOTInductor backend: the bundle's model.pt2 (torch._inductor.aoti_compile_and_package) through
// torch::inductor::AOTIModelPackageLoader. The package holds a shared library compiled for this CPU architecture.
#include <c10/core/InferenceMode.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "torch_util.h"

namespace bmf {

namespace {

class AotiModel : public Model {
 public:
  explicit AotiModel(const std::string& path) : loader_(path) {}

  Output forward(const Batch& b) override {
    try {
      c10::InferenceMode guard;
      auto [ids, mask] = batch_tensors(b);
      std::vector<at::Tensor> outs = loader_.run({ids, mask});
      if (outs.size() != 1)
        throw ModelError("model.pt2 returned " + std::to_string(outs.size()) + " outputs, expected 1");
      return to_output(outs[0], b);
    } catch (const c10::Error& e) {
      throw ModelError(std::string("AOTInductor forward failed: ") + e.what_without_backtrace());
    }
  }

 private:
  torch::inductor::AOTIModelPackageLoader loader_;
};

}  // namespace

std::unique_ptr<Model> load_aoti_model(const std::string& path) {
  try {
    return std::make_unique<AotiModel>(path);
  } catch (const std::exception& e) {  // c10::Error and std::runtime_error from the zip reader / dlopen
    std::string what = e.what();
    auto nl = what.find("\nException raised from");
    if (nl != std::string::npos) what = what.substr(0, nl);
    if (what.size() > 400) what = what.substr(0, 400) + "...";
    throw ModelError(path + ": cannot load the AOTInductor package (" + what +
                     "); the file is corrupt or was not written by `bmf export --format aoti`");
  }
}

}  // namespace bmf
