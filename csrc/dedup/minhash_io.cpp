// MinHashIndex persistence: the file format (header, blocks, XXH64 checksum), atomic save, and load
// with validation of every size and link. See minhash.h for the contract.
#include "dedup/minhash.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "dedup/xxh64.h"

namespace bmf {
namespace dedup {

namespace {

constexpr char kMagic[8] = {'B', 'M', 'F', 'M', 'H', 'I', 'X', '\0'};
constexpr std::size_t kHeaderSize = 96;
constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 40;

bool host_little_endian() {
  const std::uint32_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <typename T>
void put(unsigned char* header, std::size_t offset, T value) {
  std::memcpy(header + offset, &value, sizeof(T));
}
template <typename T>
T get(const unsigned char* header, std::size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(T));
  return value;
}

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

void MinHashIndex::save(const std::string& path) const {
  static_assert(sizeof(Slot) == 16 && sizeof(Node) == 8, "unexpected padding");
  if (!host_little_endian()) throw std::runtime_error("MinHashIndex.save: only little-endian hosts are supported");
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string tmp = path + ".tmp";
  FilePtr f(std::fopen(tmp.c_str(), "wb"));
  if (!f) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  std::vector<std::uint64_t> block_hashes;
  auto write = [&](const void* data, std::size_t bytes) {
    block_hashes.push_back(xxh64(data, bytes, 0));
    if (bytes != 0 && std::fwrite(data, 1, bytes, f.get()) != bytes) {
      throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
    }
  };
  unsigned char header[kHeaderSize] = {};
  std::memcpy(header, kMagic, 8);
  put<std::uint32_t>(header, 8, kFormatVersion);
  put<std::uint32_t>(header, 12, num_perm_);
  put<std::uint32_t>(header, 16, bands_);
  put<std::uint32_t>(header, 20, ngram_);
  put<std::uint64_t>(header, 24, seed_);
  put<double>(header, 32, threshold_);
  put<std::uint64_t>(header, 40, cluster_.size());
  put<std::uint64_t>(header, 48, num_clusters_);
  put<std::uint64_t>(header, 56, slots_.size());
  put<std::uint64_t>(header, 64, used_slots_);
  put<std::uint64_t>(header, 72, nodes_.size());
  put<std::uint32_t>(header, 80, max_reps_);
  write(header, kHeaderSize);
  write(cluster_.data(), cluster_.size() * sizeof(std::uint32_t));
  const std::uint64_t n = cluster_.size();
  for (std::uint64_t c = 0; c * kChunkDocs < n; ++c) {
    const std::uint64_t docs = std::min<std::uint64_t>(kChunkDocs, n - c * kChunkDocs);
    write(chunks_[c].get(), docs * num_perm_ * sizeof(std::uint32_t));
  }
  write(slots_.data(), slots_.size() * sizeof(Slot));
  write(nodes_.data(), nodes_.size() * sizeof(Node));
  const std::uint64_t checksum = xxh64(block_hashes.data(), block_hashes.size() * 8, 0);
  if (std::fwrite(&checksum, 1, 8, f.get()) != 8 || std::fflush(f.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  }
  if (std::fclose(f.release()) != 0) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "cannot rename " + tmp + " to " + path);
  }
}

std::unique_ptr<MinHashIndex> MinHashIndex::load(const std::string& path) {
  auto fail = [&](const std::string& problem) -> IndexFileError { return IndexFileError(path + ": " + problem); };
  if (!host_little_endian()) throw fail("MinHashIndex.load: only little-endian hosts are supported");
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw fail(std::string("cannot open: ") + std::strerror(errno));
  if (std::fseek(f.get(), 0, SEEK_END) != 0) throw fail("cannot seek (not a regular file?)");
  const long end = std::ftell(f.get());
  if (end < 0) throw fail("cannot tell its size (not a regular file?)");
  std::rewind(f.get());
  const std::uint64_t file_size = static_cast<std::uint64_t>(end);
  if (file_size < kHeaderSize + 8) {
    throw fail("truncated or not a MinHash index: " + std::to_string(file_size) +
               " bytes, a MinHash index file has at least " + std::to_string(kHeaderSize + 8));
  }
  std::vector<std::uint64_t> block_hashes;
  auto read = [&](void* data, std::size_t bytes) {
    if (bytes != 0 && std::fread(data, 1, bytes, f.get()) != bytes) throw fail("read error (file changed?)");
    block_hashes.push_back(xxh64(data, bytes, 0));
  };
  unsigned char header[kHeaderSize];
  read(header, kHeaderSize);
  if (std::memcmp(header, kMagic, 8) != 0) {
    throw fail("not a MinHash index file (bad magic; expected \"BMFMHIX\\0\" as written by MinHashIndex.save)");
  }
  const std::uint32_t version = get<std::uint32_t>(header, 8);
  if (version != kFormatVersion) {
    throw fail("unsupported MinHash index format version " + std::to_string(version) + "; expected " +
               std::to_string(kFormatVersion));
  }
  const std::uint32_t num_perm = get<std::uint32_t>(header, 12);
  const std::uint32_t bands = get<std::uint32_t>(header, 16);
  const std::uint32_t ngram = get<std::uint32_t>(header, 20);
  const std::uint64_t seed = get<std::uint64_t>(header, 24);
  const double threshold = get<double>(header, 32);
  const std::uint64_t num_docs = get<std::uint64_t>(header, 40);
  const std::uint64_t num_clusters = get<std::uint64_t>(header, 48);
  const std::uint64_t capacity = get<std::uint64_t>(header, 56);
  const std::uint64_t used = get<std::uint64_t>(header, 64);
  const std::uint64_t num_nodes = get<std::uint64_t>(header, 72);
  const std::uint32_t max_reps = get<std::uint32_t>(header, 80);
  const std::string bad_params = minhash_param_error(threshold, ngram, num_perm, bands, max_reps);
  if (!bad_params.empty()) throw fail("corrupt header (invalid parameters: " + bad_params + ")");
  if (num_docs > kMaxDocs || num_clusters > num_docs || capacity > kMaxSlots || (capacity & (capacity - 1)) != 0 ||
      used * 10 > capacity * 7 || num_nodes > kMaxDocs || num_nodes > used * max_reps ||
      (capacity == 0 && num_docs > num_clusters)) {
    throw fail("corrupt header (inconsistent sizes: documents=" + std::to_string(num_docs) + " buckets=" +
               std::to_string(used) + "/" + std::to_string(capacity) + " entries=" + std::to_string(num_nodes) + ")");
  }
  const std::uint64_t expected =
      kHeaderSize + num_docs * 4 + num_docs * num_perm * 4 + capacity * sizeof(Slot) + num_nodes * sizeof(Node) + 8;
  if (file_size < expected) {
    throw fail("truncated: " + std::to_string(file_size) + " bytes, the header promises " + std::to_string(expected));
  }
  if (file_size > expected) {
    throw fail("corrupt: " + std::to_string(file_size - expected) + " unexpected trailing bytes (expected " +
               std::to_string(expected) + " bytes)");
  }
  std::unique_ptr<MinHashIndex> index(new MinHashIndex(threshold, ngram, num_perm, bands, seed, max_reps));
  index->cluster_.resize(num_docs);
  read(index->cluster_.data(), num_docs * 4);
  index->reserve_docs(num_docs);
  for (std::uint64_t c = 0; c * kChunkDocs < num_docs; ++c) {
    const std::uint64_t docs = std::min<std::uint64_t>(kChunkDocs, num_docs - c * kChunkDocs);
    read(index->chunks_[c].get(), docs * num_perm * 4);
  }
  index->slots_.resize(capacity);
  read(index->slots_.data(), capacity * sizeof(Slot));
  index->nodes_.resize(num_nodes);
  read(index->nodes_.data(), num_nodes * sizeof(Node));
  std::uint64_t stored_checksum = 0;
  if (std::fread(&stored_checksum, 1, 8, f.get()) != 8) throw fail("read error (file changed?)");
  if (stored_checksum != xxh64(block_hashes.data(), block_hashes.size() * 8, 0)) {
    throw fail("corrupt: checksum mismatch (the file was modified or damaged after it was saved)");
  }
  // Structural checks: whatever the bytes say, nothing may index out of bounds or loop.
  std::uint64_t roots = 0;
  for (std::uint64_t d = 0; d < num_docs; ++d) {
    const std::uint32_t c = index->cluster_[d];
    if (c > d || index->cluster_[c] != c) throw fail("corrupt: bad cluster id at document " + std::to_string(d));
    roots += c == d;
  }
  if (roots != num_clusters) throw fail("corrupt: cluster count does not match the header");
  std::vector<std::uint8_t> seen(num_nodes, 0);
  std::uint64_t used_seen = 0, nodes_seen = 0;
  for (const Slot& s : index->slots_) {
    if (s.key == 0) {
      if (s.head != kNone || s.count != 0) throw fail("corrupt: bucket table");
      continue;
    }
    ++used_seen;
    if (s.count == 0 || s.count > max_reps) throw fail("corrupt: bucket size");
    std::uint32_t steps = 0;
    for (std::uint32_t n = s.head; n != kNone; n = index->nodes_[n].next) {
      if (n >= num_nodes || seen[n] || ++steps > s.count || index->nodes_[n].doc >= num_docs) {
        throw fail("corrupt: bucket entry list");
      }
      seen[n] = 1;
    }
    if (steps != s.count) throw fail("corrupt: bucket size");
    nodes_seen += steps;
  }
  if (used_seen != used || nodes_seen != num_nodes) throw fail("corrupt: bucket counts do not match the header");
  index->num_clusters_ = num_clusters;
  index->used_slots_ = used;
  return index;
}

}  // namespace dedup
}  // namespace bmf
