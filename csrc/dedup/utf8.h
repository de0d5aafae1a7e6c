// UTF-8 encoding of CPython's internal str representations (Latin-1 / UCS-2 / UCS-4 code units).
//
// Plain C++ (no Python API), so it can run on worker threads with the GIL released: callers pass
// the code-unit buffer of an immutable str they hold a reference to.
#pragma once

#include <cstddef>
#include <vector>

namespace bmf {
namespace dedup {

// Encode `length` code units of width `kind` (1, 2 or 4 bytes) at `data` as UTF-8 into `out`
// (resized as needed, never shrunk); the encoded byte count is stored in `*encoded_size`.
// Returns false when a surrogate code point (U+D800..U+DFFF, not encodable in UTF-8) is found,
// with its code-unit position in `*bad_position`.
bool encode_utf8(const void* data, std::size_t length, int kind, std::vector<unsigned char>& out,
                 std::size_t* encoded_size, std::size_t* bad_position);

}  // namespace dedup
}  // namespace bmf
