// C interface of libbmf_spm.so, the SentencePiece shim the runner loads with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why a shim: Debian's libsentencepiece.so.0 and LibTorch's libc10.so both export a global named
// FLAGS_minloglevel (SentencePiece: a 32-byte absl::Flag<int> object; c10: a 4-byte int). Linked into one process
// the dynamic linker binds both to the first definition; when that is c10's int, SentencePiece's static
// constructor writes 32 bytes over it and corrupts c10's neighbouring globals (a mutex: the first TorchScript
// forward call then deadlocks). Loading SentencePiece behind this C interface in its own symbol scope keeps the
// two definitions apart. The shim is built next to bmf_runner; the runner finds it in its own directory
// (or at $BMF_SPM_SHIM).
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BMF_SPM_API_VERSION 1

typedef struct BmfSpmApi {
  int version;
  // Loads a model file; NULL on failure with a message in err (NUL-terminated, truncated to errlen).
  void* (*load)(const char* path, char* err, size_t errlen);
  void (*free_model)(void* model);
  int (*piece_size)(void* model);
  int (*piece_to_id)(void* model, const char* piece);
  // Ids of text[0:len]; *ids is malloc'ed (free with free_buffer). Returns 0, or -1 with a message in err.
  int (*encode)(void* model, const char* text, size_t len, int** ids, size_t* n, char* err, size_t errlen);
  // Text of ids; *text is malloc'ed (free with free_buffer). Returns 0, or -1 with a message in err.
  int (*decode)(void* model, const int* ids, size_t n, char** text, size_t* len, char* err, size_t errlen);
  void (*free_buffer)(void* p);
} BmfSpmApi;

// The one exported symbol.
const BmfSpmApi* bmf_spm_api(void);

#ifdef __cplusplus
}
#endif
