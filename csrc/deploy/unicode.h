// Unicode helpers of the tokenizer.json tokenizers (hf_*.cpp), backed by ICU (libicu-dev): UTF-8 <-> code points,
// the character classes HF `tokenizers` uses, full lower-casing and NFD.
//
// `tokenizers` takes its classes from two places, and parity needs both: Rust's std (char::is_whitespace,
// char::to_lowercase: current Unicode) and the `unicode_categories` crate (is_other / is_punctuation /
// is_mark_nonspacing: tables of Unicode 8). The crate's classes are ICU's general category restricted to code
// points assigned by Unicode 8 (u_charAge), which keeps newer characters (emoji of Unicode 9+ ...) the way the
// Python library treats them.
#pragma once

#include <string>

namespace bmf {

using U32 = std::u32string;

// Code points of `s`; an ill-formed byte becomes U+FFFD (callers pass text after sanitize_utf8).
U32 utf8_decode(const std::string& s);
void utf8_append(std::string& out, char32_t c);
std::string utf8_encode(const U32& s);

bool is_white_space(char32_t c);         // Unicode White_Space (Rust char::is_whitespace, Oniguruma \s)
bool is_letter(char32_t c);              // \p{L}
bool is_number(char32_t c);              // \p{N}
bool is_other_v8(char32_t c);            // Cc | Cf | Co (| Cs) as of Unicode 8 (unicode_categories is_other)
bool is_punctuation_v8(char32_t c);      // P* as of Unicode 8
bool is_mark_nonspacing_v8(char32_t c);  // Mn as of Unicode 8

void append_lower(U32& out, char32_t c);  // full (SpecialCasing) lower case of one code point, no context
U32 nfd(const U32& s);                    // canonical decomposition

}  // namespace bmf
