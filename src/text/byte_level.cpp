#include "text/byte_level.h"

#include <array>

#include "text/unicode.h"

namespace aviary {
namespace {

// GPT-2's bytes_to_unicode: bytes that are printable in Latin-1 ('!'..'~',
// '¡'..'¬', '®'..'ÿ') keep their own code point; the other 68 bytes take
// U+0100, U+0101, ... in byte order.
const std::array<char32_t, 256>& alphabet() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

// Which byte each code point below U+0144 (the alphabet's largest) stands for.
const std::array<int16_t, 0x144>& inverse_alphabet() {
  static const std::array<int16_t, 0x144> table = [] {
    std::array<int16_t, 0x144> t;
    t.fill(-1);
    for (unsigned b = 0; b < 256; ++b) t[alphabet()[b]] = int16_t(b);
    return t;
  }();
  return table;
}

enum class Kind { kLetter, kNumber, kSpace, kOther };

Kind kind_of(char32_t u) {
  const uint8_t f = unicode::class_flags(u);
  if (f & unicode::kLetter) return Kind::kLetter;
  if (f & unicode::kNumber) return Kind::kNumber;
  if (f & unicode::kSpace) return Kind::kSpace;
  return Kind::kOther;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd, lower case only) at
// text[i], or 0.
size_t contraction_length(std::u32string_view text, size_t i) {
  if (text[i] != U'\'' || i + 1 >= text.size()) return 0;
  const char32_t a = text[i + 1];
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char32_t b = text[i + 2];
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

size_t run_end(std::u32string_view text, size_t i, Kind kind) {
  while (i < text.size() && kind_of(text[i]) == kind) ++i;
  return i;
}

// End of the piece that starts at text[i].
size_t piece_end(std::u32string_view text, size_t i) {
  if (const size_t n = contraction_length(text, i)) return i + n;
  const Kind kind = kind_of(text[i]);
  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one optional U+0020, then
  // a run of one class (the three classes are disjoint, so their order in
  // the pattern does not matter).
  if (text[i] == U' ' && i + 1 < text.size()) {
    const Kind next = kind_of(text[i + 1]);
    if (next != Kind::kSpace) return run_end(text, i + 1, next);
  }
  if (kind != Kind::kSpace) return run_end(text, i, kind);
  // "\s+(?!\S)": the whitespace run, minus its last character when a
  // non-space follows (which then leads the next piece, e.g. " word");
  // "\s+" when that would leave nothing.
  const size_t end = run_end(text, i, Kind::kSpace);
  if (end == text.size() || end - i == 1) return end;
  return end - 1;
}

}  // namespace

char32_t byte_level_char(uint8_t byte) { return alphabet()[byte]; }

std::optional<uint8_t> byte_level_byte(char32_t cp) {
  if (cp >= inverse_alphabet().size() || inverse_alphabet()[cp] < 0) return std::nullopt;
  return uint8_t(inverse_alphabet()[cp]);
}

std::string byte_level_encode(std::string_view bytes) {
  std::u32string units;
  units.reserve(bytes.size());
  for (const char c : bytes) units += byte_level_char(uint8_t(c));
  std::string out;
  unicode::append_units(out, units);
  return out;
}

std::string byte_level_decode(std::string_view token_utf8) {
  std::string out;
  for (const char32_t u : unicode::decode_units(token_utf8)) {
    const auto byte = byte_level_byte(u);
    if (!byte) return std::string(token_utf8);
    out += char(*byte);
  }
  return out;
}

void split_gpt2(std::u32string_view text, std::vector<size_t>& ends) {
  for (size_t i = 0; i < text.size();) {
    i = piece_end(text, i);
    ends.push_back(i);
  }
}

}  // namespace aviary
