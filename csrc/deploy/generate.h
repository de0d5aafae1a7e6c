// Task "lm": greedy or top-k generation for one prompt, one forward per new token over the last max_len ids.
#pragma once

#include <cstdio>
#include <random>
#include <string>

#include "session.h"

namespace bmf {

// Generates up to opt.max_new_tokens ids after `raw` (bytes; the input policy is applied here; an empty prompt
// starts from <s>), stopping at </s>; appends the output line to `out` and a timing line to `timing` when given.
void generate(Session& s, const std::string& raw, std::mt19937_64& rng, std::string& out, std::FILE* timing);

}  // namespace bmf
