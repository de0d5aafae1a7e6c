// Task "classify": a batch of input lines -> one forward -> softmax and argmax -> one output line per text.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "session.h"

namespace bmf {

// Appends one line per element of `lines` (raw bytes; the input policy is applied here) to `out`, and a timing
// line to `timing` when given. Throws ModelError when the model's logits are not (B, C).
void classify_batch(Session& s, const std::vector<std::string>& lines, std::string& out, std::FILE* timing);

}  // namespace bmf
