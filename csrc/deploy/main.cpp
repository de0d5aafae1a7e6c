// bmf_runner: raw text in, JSON lines out, no Python. Loads a bundle written by `bmf export` (TorchScript model.pt or
// AOTInductor model.pt2, tokenizer.model (SentencePiece) or tokenizer.json (WordPiece / byte-level BPE), bundle.json)
// and, per input line:
//   task "classify": {"label": ..., "probabilities": {label: p, ...}}                       (N lines per forward)
//   task "lm":       {"generated_ids": [...], "text": "..."}   greedy or top-k generation, one line at a time
//   task "token":    {"entities": [{"type", "start", "end", "text"}, ...]}  code-point offsets (token.h)
// Exit codes: 0 ok, 1 failure while running, 2 bad usage or a missing/corrupt/mismatched bundle.
//
// The pieces: args (command line), bundle + tokenizer + session (loading and checking), encode (model inputs),
// classify / generate / token (the three tasks), output (the JSON lines), io_loop (reading, batching, writing).
#include <cstdio>
#include <exception>

#include "args.h"
#include "io_loop.h"
#include "output.h"
#include "session.h"

int main(int argc, char** argv) {
  const bmf::Options opt = bmf::parse_args(argc, argv);
  bmf::Session s;
  try {
    s = bmf::open_session(opt);
  } catch (const bmf::BundleError& e) {
    std::fprintf(stderr, "bmf_runner: error: bad bundle: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bmf_runner: error: bad bundle %s: %s\n", opt.bundle.c_str(), e.what());
    return 2;
  }
  if (opt.check) {
    std::fputs(bmf::describe_line(s.bundle, s.tok->vocab_size(), bmf::get_threads()).c_str(), stdout);
    return 0;
  }
  return bmf::run_io_loop(s);
}
