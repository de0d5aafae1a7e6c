#include "loader/shard_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#if defined(_WIN32)
#define BMF_NO_MMAP 1
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace bmf {
namespace loader {

const char* const kRebuildHint = "re-run `bmf prepare` to rebuild the shards";

namespace {

constexpr std::size_t kHeaderSize = 64;
constexpr std::uint32_t kFormatVersion = 1;
const char kBinMagic[8] = {'B', 'M', 'F', 'T', 'O', 'K', 'S', '\0'};
const char kIdxMagic[8] = {'B', 'M', 'F', 'T', 'I', 'D', 'X', '\0'};

std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Python-style bytes repr of a magic, e.g. b'BMFTOKS\x00'.
std::string bytes_repr(const unsigned char* p, std::size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out = "b'";
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out + "'";
}

template <typename T>
T read_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the format is little-endian; so are all supported hosts
  return v;
}

struct Header {
  std::uint32_t version, code;
  std::uint64_t vocab, num_tokens, num_docs;
};

Header parse_header(const MappedFile& f, const std::string& path, const char* magic, const char* other_magic) {
  if (f.size() < kHeaderSize) {
    throw ShardError(path, "file is " + std::to_string(f.size()) + " bytes, too short for the header",
                     "at least " + std::to_string(kHeaderSize) + " bytes", kRebuildHint);
  }
  const unsigned char* p = f.data();
  if (std::memcmp(p, magic, 8) != 0) {
    std::string swapped;
    if (std::memcmp(p, other_magic, 8) == 0)
      swapped = " (this is the other file of a shard pair: .bin and .idx swapped?)";
    throw ShardError(path, "wrong magic " + bytes_repr(p, 8) + swapped,
                     "magic " + bytes_repr(reinterpret_cast<const unsigned char*>(magic), 8), kRebuildHint);
  }
  Header h{read_le<std::uint32_t>(p + 8), read_le<std::uint32_t>(p + 12), read_le<std::uint64_t>(p + 16),
           read_le<std::uint64_t>(p + 24), read_le<std::uint64_t>(p + 32)};
  if (h.version != kFormatVersion) {
    throw ShardError(path, "unsupported format version " + std::to_string(h.version),
                     "version " + std::to_string(kFormatVersion),
                     std::string("the shard was written by a different bigmodel_fast version; ") + kRebuildHint);
  }
  if (h.code != 1 && h.code != 2) {
    throw ShardError(path, "unknown dtype code " + std::to_string(h.code), "1 (uint16) or 2 (uint32)", kRebuildHint);
  }
  if (h.vocab < 1 || (h.code == 1 && h.vocab > (std::uint64_t{1} << 16)) || h.vocab > (std::uint64_t{1} << 32)) {
    throw ShardError(path, "vocab_size " + std::to_string(h.vocab) + " does not fit the id dtype",
                     std::string("1 <= vocab_size <= ") + (h.code == 1 ? "65536 for uint16" : "2**32 for uint32"),
                     kRebuildHint);
  }
  // Counts so large that the expected file size overflows are as wrong as a truncated file.
  if (h.num_tokens > (std::uint64_t{1} << 60) || h.num_docs > (std::uint64_t{1} << 59)) {
    throw ShardError(path,
                     "header counts num_tokens=" + std::to_string(h.num_tokens) +
                         ", num_docs=" + std::to_string(h.num_docs) + " are implausibly large",
                     "counts matching the file size", kRebuildHint);
  }
  return h;
}

#ifndef BMF_NO_MMAP
std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "a special file";
}
#endif

void check_size(const std::string& path, std::size_t size, std::uint64_t expected, const std::string& what) {
  if (size != expected) {
    const char* problem = size < expected ? "truncated" : "has trailing bytes";
    throw ShardError(path, "file is " + std::to_string(size) + " bytes (" + problem + ")",
                     std::to_string(expected) + " bytes: " + std::to_string(kHeaderSize) + "-byte header + " + what,
                     kRebuildHint);
  }
}

}  // namespace

ShardError::ShardError(std::string path_, std::string problem_, std::string expected_, std::string hint_)
    : std::runtime_error(path_ + ": " + problem_ + "; expected " + expected_ + ". HINT: " + hint_),
      path(std::move(path_)),
      problem(std::move(problem_)),
      expected(std::move(expected_)),
      hint(std::move(hint_)) {}

MappedFile::MappedFile(const std::string& path) {
#ifdef BMF_NO_MMAP
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ShardError(path, "file not found", "an existing shard file", kRebuildHint);
  fallback_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  data_ = fallback_.data();
  size_ = fallback_.size();
#else
  // Non-blocking, so that opening a named pipe returns at once (a blocking open waits forever for a writer);
  // fstat on the open descriptor then rejects anything but a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw ShardError(path, "file not found", "an existing shard file", kRebuildHint);
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {  // e.g. a socket cannot be opened at all
      throw ShardError(path, "is " + file_kind(st.st_mode) + ", not a regular file", "a regular shard file",
                       kRebuildHint);
    }
    throw ShardError(path, std::string("cannot open the file (") + std::strerror(err) + ")",
                     "a readable regular shard file", kRebuildHint);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ShardError(path, "is " + file_kind(st.st_mode) + ", not a regular file", "a regular shard file",
                     kRebuildHint);
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw ShardError(path, "mmap failed", "a readable, mappable file", "check permissions and free address space");
    }
    data_ = static_cast<const unsigned char*>(p);
    mapped_ = true;
  } else {
    static const unsigned char kEmpty[1] = {0};
    data_ = kEmpty;
  }
  ::close(fd);  // the mapping stays valid
#endif
}

MappedFile::~MappedFile() {
#ifndef BMF_NO_MMAP
  if (mapped_) ::munmap(const_cast<unsigned char*>(data_), size_);
#endif
}

ShardFile::ShardFile(const std::string& bin_path) : bin_path_(bin_path) {
  const std::string suffix = ".bin";
  if (bin_path.size() < suffix.size() ||
      bin_path.compare(bin_path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    throw ShardError(bin_path, "not a .bin path", "<prefix>.bin (with <prefix>.idx beside it)", kRebuildHint);
  }
  idx_path_ = bin_path.substr(0, bin_path.size() - suffix.size()) + ".idx";
  bin_ = std::make_unique<MappedFile>(bin_path_);
  idx_ = std::make_unique<MappedFile>(idx_path_);
  const Header b = parse_header(*bin_, bin_path_, kBinMagic, kIdxMagic);
  const Header i = parse_header(*idx_, idx_path_, kIdxMagic, kBinMagic);
  const char* names[4] = {"dtype code", "vocab_size", "num_tokens", "num_docs"};
  const std::uint64_t bv[4] = {b.code, b.vocab, b.num_tokens, b.num_docs};
  const std::uint64_t iv[4] = {i.code, i.vocab, i.num_tokens, i.num_docs};
  for (int k = 0; k < 4; ++k) {
    if (bv[k] != iv[k]) {
      throw ShardError(idx_path_,
                       std::string("header ") + names[k] + " is " + std::to_string(iv[k]) + " but " +
                           base_name(bin_path_) + " says " + std::to_string(bv[k]),
                       "both headers to agree", kRebuildHint);
    }
  }
  dtype_code_ = b.code;
  vocab_size_ = b.vocab;
  num_tokens_ = static_cast<std::int64_t>(b.num_tokens);
  num_docs_ = static_cast<std::int64_t>(b.num_docs);
  const std::uint64_t itemsize = dtype_code_ == 1 ? 2 : 4;
  check_size(bin_path_, bin_->size(), kHeaderSize + b.num_tokens * itemsize,
             std::to_string(b.num_tokens) + (dtype_code_ == 1 ? " uint16" : " uint32") + " ids");
  check_size(idx_path_, idx_->size(), kHeaderSize + (b.num_docs + 1) * 8,
             std::to_string(b.num_docs + 1) + " int64 offsets");
  tokens_ = bin_->data() + kHeaderSize;
  offsets_ = reinterpret_cast<const std::int64_t*>(idx_->data() + kHeaderSize);  // 64-byte aligned in the mapping

  const std::int64_t* off = offsets_;
  if (off[0] != 0) {
    throw ShardError(idx_path_, "offsets[0] is " + std::to_string(off[0]), "offsets[0] == 0", kRebuildHint);
  }
  for (std::int64_t d = 0; d <= num_docs_; ++d) {
    if (off[d] < 0 || off[d] > num_tokens_) {
      throw ShardError(idx_path_, "offsets[" + std::to_string(d) + "] = " + std::to_string(off[d]) + " is out of range",
                       "0 <= offset <= num_tokens (" + std::to_string(num_tokens_) + ")", kRebuildHint);
    }
  }
  for (std::int64_t d = 0; d < num_docs_; ++d) {
    if (off[d + 1] < off[d]) {
      throw ShardError(idx_path_,
                       "offsets are not monotone: offsets[" + std::to_string(d) + "] = " + std::to_string(off[d]) +
                           " > offsets[" + std::to_string(d + 1) + "] = " + std::to_string(off[d + 1]),
                       "non-decreasing offsets", kRebuildHint);
    }
  }
  if (off[num_docs_] != num_tokens_) {
    throw ShardError(idx_path_, "offsets[-1] is " + std::to_string(off[num_docs_]),
                     "offsets[-1] == num_tokens (" + std::to_string(num_tokens_) + ")", kRebuildHint);
  }
}

}  // namespace loader
}  // namespace bmf
