// Unicode Normalization Form C, as the HF tokenizers "NFC" normalizer does it.
//
// The reference (HF tokenizers, crate unicode-normalization-alignments) has
// Unicode 9.0 tables, and so do we: marks assigned later have combining class
// 0 here (never reordered) and later composites are never formed. That keeps
// token ids identical to the reference for such input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aviary::unicode {

// Canonical combining class of a unit (0 for raw-byte units, see unicode.h).
uint8_t combining_class(char32_t unit);

// NFC of a unit sequence: canonical decomposition, canonical ordering, then
// canonical composition. Raw-byte units act as starters that compose with
// nothing.
std::u32string nfc(std::u32string_view units);

// NFC of UTF-8 bytes; ill-formed bytes are kept as they are.
std::string nfc_utf8(std::string_view bytes);

}  // namespace aviary::unicode
