// The byte-level parts of GPT-2 style BPE (HF tokenizers' "ByteLevel"
// pre-tokenizer and decoder).
//
// Vocabulary files write token bytes in a printable alphabet: each byte is
// one code point (printable Latin-1 bytes stand for themselves, the others
// map to U+0100 onwards, so a space is 'Ġ'). Aviary keeps tokens as raw
// bytes and converts only when reading the file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aviary {

// The code point that stands for `byte` in the alphabet.
char32_t byte_level_char(uint8_t byte);

// The byte a code point stands for, if it is in the alphabet.
std::optional<uint8_t> byte_level_byte(char32_t cp);

// A byte string written in the alphabet, as UTF-8 (how vocab keys look).
std::string byte_level_encode(std::string_view bytes);

// The bytes a token string stands for, as the ByteLevel decoder gives them:
// mapped through the alphabet when every character is in it, otherwise the
// string's own UTF-8 bytes (so added tokens such as "  " come out verbatim).
std::string byte_level_decode(std::string_view token_utf8);

// Splits units (see unicode.h) as the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does under Oniguruma, whose leftmost alternative wins. Appends the end
// offset of each piece to `ends`; the pieces cover all of `text`.
void split_gpt2(std::u32string_view text, std::vector<size_t>& ends);

}  // namespace aviary
