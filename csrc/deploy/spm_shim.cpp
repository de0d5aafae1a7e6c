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

// On success, `data[0:n]` plus one zero element into a malloc'ed *out (free with free_buffer), n into *len: 0.
// Otherwise -1 with the reason in err.
template <class T>
int to_buffer(const sentencepiece::util::Status& status, const T* data, size_t n, T** out, size_t* len, char* err,
              size_t errlen) {
  if (!status.ok()) {
    set_err(err, errlen, status.ToString());
    return -1;
  }
  T* buf = static_cast<T*>(std::malloc(sizeof(T) * (n + 1)));
  if (!buf) {
    set_err(err, errlen, "out of memory");
    return -1;
  }
  if (n) std::memcpy(buf, data, sizeof(T) * n);
  buf[n] = T(0);
  *out = buf;
  *len = n;
  return 0;
}

int encode(void* m, const char* text, size_t len, int** ids, size_t* n, char* err, size_t errlen) {
  std::vector<int> out;
  const auto status = sp(m)->Encode(std::string_view(text, len), &out);
  return to_buffer(status, out.data(), out.size(), ids, n, err, errlen);
}

int decode(void* m, const int* ids, size_t n, char** text, size_t* len, char* err, size_t errlen) {
  std::string out;
  const auto status = sp(m)->Decode(std::vector<int>(ids, ids + n), &out);
  return to_buffer(status, out.data(), out.size(), text, len, err, errlen);
}

void free_buffer(void* p) { std::free(p); }

const BmfSpmApi kApi = {BMF_SPM_API_VERSION, load, free_model, piece_size, piece_to_id, encode, decode, free_buffer};

}  // namespace

extern "C" __attribute__((visibility("default"))) const BmfSpmApi* bmf_spm_api(void) { return &kApi; }
