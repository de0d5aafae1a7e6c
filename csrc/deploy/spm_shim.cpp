// libbmf_spm.so: SentencePiece behind a C interface (see spm_shim.h for why).
#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void set_err(char* err, size_t errlen, const std::string& msg) {
  if (!err || errlen == 0) return;
  std::strncpy(err, msg.c_str(), errlen - 1);
  err[errlen - 1] = '\0';
}

sentencepiece::SentencePieceProcessor* sp(void* m) { return static_cast<sentencepiece::SentencePieceProcessor*>(m); }

void* load(const char* path, char* err, size_t errlen) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    delete p;
    return nullptr;
  }
  return p;
}

void free_model(void* m) { delete sp(m); }
int piece_size(void* m) { return sp(m)->GetPieceSize(); }
int piece_to_id(void* m, const char* piece) { return sp(m)->PieceToId(piece); }

int encode(void* m, const char* text, size_t len, int** ids, size_t* n, char* err, size_t errlen) {
  std::vector<int> out;
  const auto status = sp(m)->Encode(std::string_view(text, len), &out);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    return -1;
  }
  *n = out.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (out.empty() ? 1 : out.size())));
  if (!*ids) {
    set_err(err, errlen, "out of memory");
    return -1;
  }
  if (!out.empty()) std::memcpy(*ids, out.data(), sizeof(int) * out.size());
  return 0;
}

int decode(void* m, const int* ids, size_t n, char** text, size_t* len, char* err, size_t errlen) {
  std::string out;
  const auto status = sp(m)->Decode(std::vector<int>(ids, ids + n), &out);
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    return -1;
  }
  *len = out.size();
  *text = static_cast<char*>(std::malloc(out.size() + 1));
  if (!*text) {
    set_err(err, errlen, "out of memory");
    return -1;
  }
  std::memcpy(*text, out.data(), out.size());
  (*text)[out.size()] = '\0';
  return 0;
}

void free_buffer(void* p) { std::free(p); }

const BmfSpmApi kApi = {BMF_SPM_API_VERSION, load, free_model, piece_size, piece_to_id, encode, decode, free_buffer};

}  // namespace

extern "C" __attribute__((visibility("default"))) const BmfSpmApi* bmf_spm_api(void) { return &kApi; }
