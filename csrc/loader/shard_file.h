// Memory-mapped, validated token shards (format: bigmodel_fast/data/shards.py; README "Shard format").
//
// Opening a shard checks both headers (size, magic, version, dtype code, vocab_size, that the two headers agree),
// the exact file sizes and every offset (offsets[0] == 0, in range, non-decreasing, offsets[-1] == num_tokens).
// Any problem throws ShardError, which the bindings turn into bigmodel_fast.data.shards.ShardFormatError
// ("<file>: <problem>; expected <expected>. HINT: <hint>"): never a crash, never a silent wrong read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bmf {
namespace loader {

struct ShardError : std::runtime_error {
  ShardError(std::string path_, std::string problem_, std::string expected_, std::string hint_);
  std::string path, problem, expected, hint;
};

extern const char* const kRebuildHint;

// A read-only mapping of a whole file (munmap on destruction).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<unsigned char> fallback_;  // platforms without mmap
  bool mapped_ = false;
};

class ShardFile {
 public:
  // `bin_path` is the .bin file; the .idx is the same path with the suffix replaced.
  explicit ShardFile(const std::string& bin_path);

  const std::string& bin_path() const { return bin_path_; }
  const std::string& idx_path() const { return idx_path_; }
  std::uint32_t dtype_code() const { return dtype_code_; }  // 1 = uint16, 2 = uint32
  std::uint64_t vocab_size() const { return vocab_size_; }
  std::int64_t num_tokens() const { return num_tokens_; }
  std::int64_t num_docs() const { return num_docs_; }
  const std::int64_t* offsets() const { return offsets_; }  // num_docs + 1
  const void* tokens() const { return tokens_; }

 private:
  std::string bin_path_, idx_path_;
  std::unique_ptr<MappedFile> bin_, idx_;
  std::uint32_t dtype_code_ = 0;
  std::uint64_t vocab_size_ = 0;
  std::int64_t num_tokens_ = 0, num_docs_ = 0;
  const std::int64_t* offsets_ = nullptr;
  const void* tokens_ = nullptr;
};

}  // namespace loader
}  // namespace bmf
