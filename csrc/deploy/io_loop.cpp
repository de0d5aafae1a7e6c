#include "io_loop.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "classify.h"
#include "generate.h"
#include "output.h"
#include "text.h"
#include "token.h"

namespace bmf {

namespace {

// The input and --timing files, closed at the end of the loop.
struct Files {
  std::FILE* in = stdin;
  std::FILE* timing = nullptr;
  ~Files() {
    if (timing) std::fclose(timing);
    if (in && in != stdin) std::fclose(in);
  }
};

std::FILE* open_or_report(const std::string& path, const char* mode, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), mode);
  if (!f) std::fprintf(stderr, "bmf_runner: error: %s: %s (%s)\n", path.c_str(), what, std::strerror(errno));
  return f;
}

}  // namespace

int run_io_loop(Session& s) {
  const Options& opt = s.opt;
  Files files;
  if (opt.input != "-" && !(files.in = open_or_report(opt.input, "rb", "cannot open input"))) return 2;
  if (!opt.timing.empty() && !(files.timing = open_or_report(opt.timing, "w", "cannot write timings"))) return 2;
  LineReader reader(files.in, (size_t)opt.max_line_bytes);
  std::string line, out;
  std::vector<std::string> lines;
  int64_t line_no = 0;
  std::mt19937_64 rng(opt.seed);
  auto flush = [&]() {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    out.clear();
  };
  try {
    for (;;) {
      const bool more = reader.next(line);
      if (more) {
        ++line_no;
        if (opt.tokenize) {
          const std::string text = sanitize_utf8(line);
          write_tokenize_line(out, opt, text, s.tok->encode(text));
          if (out.size() > (1 << 16)) flush();
          continue;
        }
        if (s.bundle.task == "lm") {
          generate(s, line, rng, out, files.timing);
          flush();
          continue;
        }
        lines.push_back(line);
      }
      // A batch is full, the input ended, or nothing more is waiting (interactive use: answer what we have).
      if (!lines.empty() && (!more || (int64_t)lines.size() == opt.batch_size || !reader.ready())) {
        if (s.bundle.task == "token")
          token_batch(s, lines, out, files.timing);
        else
          classify_batch(s, lines, out, files.timing);
        lines.clear();
        flush();
      }
      if (!more) break;
    }
    flush();
  } catch (const std::exception& e) {
    flush();
    std::fprintf(stderr, "bmf_runner: error: at input line %lld: %s\n", (long long)line_no, e.what());
    return 1;
  }
  return 0;
}

}  // namespace bmf
