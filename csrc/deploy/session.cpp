#include "session.h"

#include "encode.h"

namespace bmf {

namespace {

// One forward on a tiny input: the model must load, run and fit the bundle (label count, vocabulary).
void smoke_check(Session& s) {
  const Bundle& bundle = s.bundle;
  Batch b = pad({{bundle.cls_id, bundle.sep_id}}, bundle.pad_id);
  const std::string& name = bundle.model_path;
  if (bundle.task == "lm") b.gather = {1};
  Output out;
  try {
    out = s.model->forward(b);
  } catch (const ModelError& e) {
    throw BundleError(name + ": the model does not run on a [CLS] [SEP] input (" + e.what() + ")");
  }
  if (bundle.task == "classify") {
    if (out.shape.size() != 2 || out.shape[0] != 1 || out.shape[1] != (int64_t)bundle.labels.size())
      throw BundleError(name + ": the model returns logits of shape " + shape_str(out.shape) +
                        " for one text, but bundle.json lists " + std::to_string(bundle.labels.size()) +
                        " labels; the model does not belong to this bundle");
  } else if (out.shape.size() != 2 || out.shape[1] != s.tok->vocab_size()) {
    throw BundleError(name + ": the model returns next-token logits of shape " + shape_str(out.shape) +
                      " but the tokenizer has " + std::to_string(s.tok->vocab_size()) +
                      " pieces; the model does not belong to this bundle");
  }
}

}  // namespace

Session open_session(const Options& opt) {
  Session s;
  s.opt = opt;
  s.bundle = load_bundle(opt.bundle);
  s.tok = std::make_unique<Tokenizer>(s.bundle);
  set_threads(opt.threads);
  try {
    s.model = s.bundle.format == "aoti" ? load_aoti_model(s.bundle.model_path)
                                        : load_torchscript_model(s.bundle.model_path, opt.jit_optimize);
  } catch (const ModelError& e) {
    throw BundleError(e.what());
  }
  smoke_check(s);
  return s;
}

}  // namespace bmf
