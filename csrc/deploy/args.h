// bmf_runner's command line: options, their limits and --help. Every numeric option is range-checked here (exit 2
// with one line on a bad value), so no option can make the runner spawn thousands of threads or allocate without
// bound.
#pragma once

#include <cstdint>
#include <string>

namespace bmf {

constexpr int64_t kMaxBatchSize = 4096;
constexpr int64_t kMaxNewTokens = 1 << 16;
constexpr int64_t kMaxTopK = 1 << 20;
constexpr int64_t kMaxLineBytesLimit = int64_t(1) << 30;  // --max-line-bytes may be at most 1 GiB
constexpr int kMaxThreadsCap = 1024;

// Largest --threads value: 4 x the cores the machine reports (hardware_concurrency; 64 when unknown), at most 1024.
int max_threads();

struct Options {
  std::string bundle, input = "-", timing;
  int64_t batch_size = 32;
  int threads = 0;  // 0: LibTorch's default (all cores)
  int64_t max_line_bytes = 1 << 20;
  bool print_ids = false, print_logits = false, echo = false, check = false, tokenize = false, jit_optimize = false;
  bool print_words = false;  // token: add each word's code-point span
  int64_t max_new_tokens = 32;
  int64_t top_k = 1;
  double temperature = 1.0;
  uint64_t seed = 0;
};

// Parses argv; prints --help/--version and exits 0, or prints one error line and exits 2.
Options parse_args(int argc, char** argv);

}  // namespace bmf
