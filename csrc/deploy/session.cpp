#include "session.h"

#include "encode.h"

namespace bmf {

namespace {

// One forward on a tiny input: the model must load, run and fit the bundle (label count, vocabulary). The input is
// [CLS] [SEP], or, without those roles, the first of bos / eos / id 0.
void smoke_check(Session& s) {
  const Bundle& bundle = s.bundle;
  std::vector<int64_t> probe;
  if (bundle.cls_id >= 0 && bundle.sep_id >= 0)
    probe = {bundle.cls_id, bundle.sep_id};
  else
    probe = {bundle.bos_id >= 0 ? bundle.bos_id : bundle.eos_id >= 0 ? bundle.eos_id : 0};
  Batch b = pad({probe}, bundle.pad_id);
  const std::string& name = bundle.model_path;
  if (bundle.task == "lm") b.gather = {b.seq - 1};
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
  } else if (bundle.task == "token") {
    const int64_t c = (int64_t)bundle.labels.size();
    if (out.shape.size() != 3 || out.shape[0] != 1 || out.shape[1] != b.seq || out.shape[2] != c)
      throw BundleError(name + ": the model returns logits of shape " + shape_str(out.shape) + " for one input of " +
                        std::to_string(b.seq) + " ids, but a token classifier with the " + std::to_string(c) +
                        " labels of bundle.json returns (1, " + std::to_string(b.seq) + ", " + std::to_string(c) +
                        "); the model does not belong to this bundle");
  } else if (const int64_t v = bundle.vocab_size >= 0 ? bundle.vocab_size : s.tok->vocab_size();
             out.shape.size() != 2 || out.shape[1] != v) {
    throw BundleError(name + ": the model returns next-token logits of shape " + shape_str(out.shape) +
                      " but the vocabulary has " + std::to_string(v) +
                      " ids; the model does not belong to this bundle");
  }
}

}  // namespace

Session open_session(const Options& opt) {
  Session s;
  s.opt = opt;
  s.bundle = load_bundle(opt.bundle);
  s.tok = load_tokenizer(s.bundle);
  if (s.bundle.task == "token" && s.bundle.boundary_id >= s.tok->vocab_size())
    throw BundleError(s.bundle.dir + "/bundle.json: field 'token.boundary_id' " + std::to_string(s.bundle.boundary_id) +
                      " is not an id of the tokenizer (" + std::to_string(s.tok->vocab_size()) + " ids)");
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
