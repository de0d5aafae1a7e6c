// A loaded bundle ready to answer lines: the options, the bundle description, its tokenizer and its model.
#pragma once

#include <memory>

#include "args.h"
#include "bundle.h"
#include "model.h"
#include "tokenizer.h"

namespace bmf {

struct Session {
  Options opt;
  Bundle bundle;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Model> model;
};

// Loads opt.bundle (manifest, bundle.json, tokenizer, model; sets the thread count) and runs one forward on a
// [CLS] [SEP] input whose logits must fit the bundle (label count, vocabulary; token: (1, 2, labels)). BundleError
// on anything wrong.
Session open_session(const Options& opt);

}  // namespace bmf
