// UTF-8 encoder for Latin-1 / UCS-2 / UCS-4 code units. See utf8.h.
#include "dedup/utf8.h"

#include <cstdint>
#include <cstring>

namespace bmf {
namespace dedup {
namespace {

// Bits that are set in a 64-bit word of code units iff one of the units is not ASCII.
template <typename Unit>
constexpr std::uint64_t non_ascii_mask() {
  return sizeof(Unit) == 1 ? 0x8080808080808080ULL : sizeof(Unit) == 2 ? 0xFF80FF80FF80FF80ULL : 0xFFFFFF80FFFFFF80ULL;
}

template <typename Unit>
bool encode_units(const Unit* in, std::size_t length, unsigned char* out, std::size_t* encoded_size,
                  std::size_t* bad_position) {
  constexpr std::size_t kUnitsPerWord = 8 / sizeof(Unit);
  unsigned char* p = out;
  for (std::size_t i = 0; i < length; ++i) {
    // Fast path: a whole 8-byte word of ASCII units is copied without per-unit branches.
    while (i + kUnitsPerWord <= length) {
      std::uint64_t word;
      std::memcpy(&word, in + i, sizeof(word));
      if (word & non_ascii_mask<Unit>()) break;
      for (std::size_t k = 0; k < kUnitsPerWord; ++k) *p++ = static_cast<unsigned char>(in[i + k]);
      i += kUnitsPerWord;
    }
    if (i == length) break;
    const std::uint32_t c = in[i];
    if (c < 0x80) {
      *p++ = static_cast<unsigned char>(c);
    } else if (c < 0x800) {
      *p++ = static_cast<unsigned char>(0xC0 | (c >> 6));
      *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      if (c >= 0xD800 && c <= 0xDFFF) {
        *bad_position = i;
        return false;
      }
      *p++ = static_cast<unsigned char>(0xE0 | (c >> 12));
      *p++ = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
      *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
    } else {
      *p++ = static_cast<unsigned char>(0xF0 | (c >> 18));
      *p++ = static_cast<unsigned char>(0x80 | ((c >> 12) & 0x3F));
      *p++ = static_cast<unsigned char>(0x80 | ((c >> 6) & 0x3F));
      *p++ = static_cast<unsigned char>(0x80 | (c & 0x3F));
    }
  }
  *encoded_size = static_cast<std::size_t>(p - out);
  return true;
}

}  // namespace

bool encode_utf8(const void* data, std::size_t length, int kind, std::vector<unsigned char>& out,
                 std::size_t* encoded_size, std::size_t* bad_position) {
  // Worst case bytes per code unit: Latin-1 -> 2, UCS-2 -> 3, UCS-4 -> 4.
  const std::size_t worst = length * (kind == 1 ? 2 : kind == 2 ? 3 : 4);
  if (out.size() < worst) out.resize(worst);
  switch (kind) {
    case 1: return encode_units(static_cast<const std::uint8_t*>(data), length, out.data(), encoded_size, bad_position);
    case 2:
      return encode_units(static_cast<const std::uint16_t*>(data), length, out.data(), encoded_size, bad_position);
    default:
      return encode_units(static_cast<const std::uint32_t*>(data), length, out.data(), encoded_size, bad_position);
  }
}

}  // namespace dedup
}  // namespace bmf
