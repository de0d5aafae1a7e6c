// bmf_tokenize TOKENIZER_JSON [--max-line-bytes N]: the runner's tokenizer.json tokenizer on its own (no LibTorch),
// for parity tests and throughput. Reads lines from stdin with the runner's input policy (text.h: line ends, the
// per-line byte cap, invalid UTF-8 -> U+FFFD) and writes {"ids": [...]} per line.
// Exit codes: 0 ok, 1 failure while running, 2 bad usage or an unsupported/malformed tokenizer.json.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hf_tokenizer.h"
#include "text.h"

int main(int argc, char** argv) {
  std::string path;
  size_t max_line = bmf::kDefaultMaxLineBytes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--max-line-bytes" && i + 1 < argc) {
      max_line = std::strtoull(argv[++i], nullptr, 10);
    } else if (path.empty() && a.rfind("--", 0) != 0) {
      path = a;
    } else {
      path.clear();
      break;
    }
  }
  if (path.empty() || max_line == 0) {
    std::fputs("usage: bmf_tokenize TOKENIZER_JSON [--max-line-bytes N] < lines\n", stderr);
    return 2;
  }
  std::unique_ptr<bmf::HfTokenizer> tok;
  try {
    tok = bmf::HfTokenizer::load(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bmf_tokenize: error: %s\n", e.what());
    return 2;
  }
  bmf::LineReader reader(stdin, max_line);
  std::string line, out;
  long long n = 0;
  try {
    while (reader.next(line)) {
      ++n;
      out += "{\"ids\": [";
      bool first = true;
      for (int id : tok->encode(bmf::sanitize_utf8(line))) {
        if (!first) out += ", ";
        first = false;
        out += std::to_string(id);
      }
      out += "]}\n";
      if (out.size() > (1 << 16)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
    }
  } catch (const std::exception& e) {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fprintf(stderr, "bmf_tokenize: error: at input line %lld: %s\n", n, e.what());
    return 1;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}
