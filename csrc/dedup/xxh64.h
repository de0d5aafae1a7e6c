// XXH64: the 64-bit xxHash algorithm (one-shot over a byte buffer).
//
// Written from the public algorithm description (xxhash_spec.md, "XXH64 algorithm"):
// 32-byte stripes are folded into four 64-bit accumulators, the tail is consumed in
// 8/4/1-byte steps, and the result goes through a final avalanche. Input words are read
// little-endian regardless of the host byte order, so hashes are portable.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bmf {
namespace dedup {

// Hash `len` bytes starting at `data` with `seed`. `data` may be null when `len == 0`.
std::uint64_t xxh64(const void* data, std::size_t len, std::uint64_t seed) noexcept;

}  // namespace dedup
}  // namespace bmf
