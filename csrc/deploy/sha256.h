// SHA-256 (FIPS 180-4) of a file, for checking a bundle against the manifest.json that `bmf export` writes.
#pragma once

#include <cstdint>
#include <string>

namespace bmf {

class Sha256 {
 public:
  Sha256();
  void update(const unsigned char* data, size_t n);
  std::string hex();  // lower-case hex digest; call once, after the last update

 private:
  void block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// Hex SHA-256 of the file at `path`; throws std::runtime_error when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace bmf
