// Code-point level helpers for the HF-tokenizers BPE tokenizer: UTF-8 to
// code points and back (keeping ill-formed bytes), and the character classes
// its pre-tokenizer regex and added-token rules ask about.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "text/unicode_tables.h"

namespace aviary::unicode {

// encode_bytes accepts any bytes, so each byte of an ill-formed UTF-8
// sequence becomes one "unit" kRawByteBase + byte. Such units lie above
// U+10FFFF, so no Unicode table knows them: they never normalise, compose or
// count as letters, numbers or spaces, and they turn back into the same byte.
inline constexpr char32_t kRawByteBase = 0x110000;

// The units of `bytes`: code points for well-formed UTF-8, raw-byte units
// for every byte of an ill-formed sequence.
std::u32string decode_units(std::string_view bytes);

// Appends the bytes of `units` (UTF-8 for code points, the byte itself for
// raw-byte units): the inverse of decode_units.
void append_units(std::string& out, std::u32string_view units);

// The ClassFlag bits of a unit (0 for raw-byte units).
uint8_t class_flags(char32_t unit);

inline bool is_space(char32_t unit) { return (class_flags(unit) & kSpace) != 0; }

}  // namespace aviary::unicode
