#include "args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <thread>
#include <utility>

namespace bmf {

namespace {

const char* kVersion = "bmf_runner 1 (bundle_version 1)";

const char* kUsage =
    "usage: bmf_runner BUNDLE [options]\n"
    "\n"
    "Reads texts (one per line) from stdin or --input and prints one JSON object per line.\n"
    "BUNDLE is a directory written by `bmf export` (--format torchscript or aoti).\n"
    "\n"
    "options:\n"
    "  --input FILE         read texts from FILE instead of stdin ('-' = stdin)\n"
    "  --batch-size N       classify: at most N texts per forward call (1..4096, default 32; a partial batch runs\n"
    "                       when no more input is waiting, so interactive use is not delayed); token: N texts per\n"
    "                       batch, their windows in forward calls of at most N\n"
    "  --threads N          LibTorch intra-op threads, 1 .. 4 x the machine's cores (at most 1024; default:\n"
    "                       LibTorch's default, all cores)\n"
    "  --max-line-bytes N   keep at most N bytes of each input line (1..2^30, default 1048576 = 1 MiB, the same\n"
    "                       as `bmf predict --input`); the rest of a longer line is skipped, never stored\n"
    "  --print-ids          add the model input ids (\"ids\"; long_text chunks and token: \"windows\", the ids of\n"
    "                       every window; lm: \"prompt_ids\")\n"
    "  --print-logits       add the raw logits (lm: next-token logits after the prompt; token: per word, the\n"
    "                       logits at its first sub-token)\n"
    "  --print-words        token: add the words (\"words\": [start, end] code-point spans)\n"
    "  --echo               add the input text (\"text\"; lm: \"prompt\") after the input policy below\n"
    "  --max-new-tokens N   lm: tokens to generate per line (0..65536, default 32; stops early at </s>)\n"
    "  --top-k K            lm: sample from the K most likely tokens (default 1 = greedy)\n"
    "  --temperature T      lm: sampling temperature for --top-k > 1 (finite, > 0; default 1.0)\n"
    "  --seed S             lm: sampling seed (default 0)\n"
    "  --jit-optimize       torchscript: use TorchScript's profiling optimizer (re-specialises per input shape;\n"
    "                       off by default for steady latency)\n"
    "  --timing FILE        write per-batch timings (JSON lines, milliseconds) to FILE\n"
    "  --tokenize           only tokenize: {\"ids\": [...]} per line, all ids of the (capped) line, no special\n"
    "                       tokens, no model call\n"
    "  --check              load and check the bundle, print its description, exit\n"
    "  --version, --help\n"
    "\n"
    "Input policy (same as `bmf predict --input`, bigmodel_fast/data/lines.py): lines end at \\n, \\r\\n or \\r;\n"
    "a line longer than --max-line-bytes keeps its first N bytes cut back to a whole UTF-8 character; invalid\n"
    "UTF-8 is replaced by U+FFFD per maximal ill-formed subpart (Python's errors=\"replace\"); empty lines are\n"
    "valid (empty) texts. classify tokenizes only a prefix of a long line: 8 x max_len bytes, doubled until its\n"
    "first max_len-2 ids are stable (the same rule as Python's encode_for_classifier); a bundle exported with\n"
    "--long-text head-tail or chunks tokenizes the whole line and feeds its head and tail, or overlapping windows\n"
    "whose logits are averaged (bundle.json long_text). lm keeps the last max_len\n"
    "ids of the (capped) prompt as its context.\n"
    "\n"
    "Trust: a bundle is a program. model.pt (TorchScript) and model.pt2 (AOTInductor, a compiled shared library\n"
    "that is dlopen()ed) run code inside this process; only run bundles you built or trust. manifest.json (size\n"
    "and SHA-256 of every file, written by `bmf export`) is checked before anything is loaded: it catches\n"
    "corrupted or half-written bundles, not deliberate tampering.\n"
    "\n"
    "Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad bundle (one line on stderr).\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bmf_runner: error: %s (run `bmf_runner --help` for usage)\n", msg.c_str());
  std::exit(2);
}

int64_t parse_int(const std::string& flag, const char* v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi)
    usage_error(flag + " expects an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v +
                "'");
  return x;
}

}  // namespace

int max_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  const int64_t n = 4 * int64_t(cores ? cores : 16);
  return (int)std::min<int64_t>(n, kMaxThreadsCap);
}

Options parse_args(int argc, char** argv) {
  Options o;
  // Flags without a value, and the integer options with their ranges.
  const std::pair<const char*, bool*> switches[] = {
      {"--print-ids", &o.print_ids},       {"--echo", &o.echo},         {"--print-logits", &o.print_logits},
      {"--jit-optimize", &o.jit_optimize}, {"--tokenize", &o.tokenize}, {"--check", &o.check},
      {"--print-words", &o.print_words}};
  struct IntOption {
    const char* flag;
    int64_t* value;
    int64_t lo, hi;
  };
  const IntOption ints[] = {{"--batch-size", &o.batch_size, 1, kMaxBatchSize},
                            {"--max-line-bytes", &o.max_line_bytes, 1, kMaxLineBytesLimit},
                            {"--max-new-tokens", &o.max_new_tokens, 0, kMaxNewTokens},
                            {"--top-k", &o.top_k, 1, kMaxTopK}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    const auto sw = std::find_if(std::begin(switches), std::end(switches), [&](const auto& f) { return a == f.first; });
    const auto in = std::find_if(std::begin(ints), std::end(ints), [&](const IntOption& f) { return a == f.flag; });
    if (sw != std::end(switches)) {
      *sw->second = true;
    } else if (in != std::end(ints)) {
      *in->value = parse_int(a, value(), in->lo, in->hi);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::puts(kVersion);
      std::exit(0);
    } else if (a == "--input") {
      o.input = value();
    } else if (a == "--timing") {
      o.timing = value();
    } else if (a == "--threads") {
      o.threads = (int)parse_int(a, value(), 1, max_threads());
    } else if (a == "--seed") {
      o.seed = (uint64_t)parse_int(a, value(), 0, INT64_MAX);
    } else if (a == "--temperature") {
      const char* v = value();
      char* end = nullptr;
      o.temperature = std::strtod(v, &end);
      if (end == v || *end || !(o.temperature > 0) || !std::isfinite(o.temperature))
        usage_error(std::string("--temperature expects a finite number > 0, got '") + v + "'");
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      usage_error("unknown option " + a);
    } else if (o.bundle.empty()) {
      o.bundle = a;
    } else {
      usage_error("unexpected argument '" + a + "' (one BUNDLE directory expected)");
    }
  }
  if (o.bundle.empty()) usage_error("missing BUNDLE (a directory written by `bmf export`)");
  return o;
}

}  // namespace bmf
