// The parts of the HF BPE tokenizer on their own: NFC normalisation, the
// GPT-2 pre-tokenizer split and the byte-level alphabet.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "text/byte_level.h"
#include "text/unicode.h"
#include "text/unicode_nfc.h"

namespace aviary {
namespace {

using unicode::nfc_utf8;

TEST(Nfc, ComposesDecomposedPairs) {
  EXPECT_EQ(nfc_utf8("cafe\u0301"), "caf\u00E9");
  EXPECT_EQ(nfc_utf8("A\u030A"), "\u00C5");
  EXPECT_EQ(nfc_utf8("\u00C5"), "\u00C5");  // already composed
  EXPECT_EQ(nfc_utf8("n\u0303o"), "\u00F1o");
  EXPECT_EQ(nfc_utf8("\u1E9B\u0323"), "\u1E9B\u0323");  // the UAX #15 example: no composite for it
  EXPECT_EQ(nfc_utf8("plain ASCII"), "plain ASCII");
  EXPECT_EQ(nfc_utf8(""), "");
}

TEST(Nfc, ReordersMarksByCombiningClass) {
  // dot below (220) and circumflex (230), in either order, make U+1EAD.
  EXPECT_EQ(nfc_utf8("a\u0323\u0302"), "\u1EAD");
  EXPECT_EQ(nfc_utf8("a\u0302\u0323"), "\u1EAD");
  EXPECT_EQ(unicode::combining_class(0x0301), 230);
  EXPECT_EQ(unicode::combining_class(0x0323), 220);
  EXPECT_EQ(unicode::combining_class(U'a'), 0);
}

TEST(Nfc, BlockedMarksStaySeparate) {
  EXPECT_EQ(nfc_utf8("a\u0301\u0301"), "\u00E1\u0301");  // the second acute is blocked by the first
  EXPECT_EQ(nfc_utf8("\u0301e"), "\u0301e");              // a mark with no starter before it
}

TEST(Nfc, SingletonsAndExclusionsDecompose) {
  EXPECT_EQ(nfc_utf8("\u212A"), "K");                  // KELVIN SIGN
  EXPECT_EQ(nfc_utf8("\u212B"), "\u00C5");             // ANGSTROM SIGN
  EXPECT_EQ(nfc_utf8("\u037E"), ";");                  // GREEK QUESTION MARK
  EXPECT_EQ(nfc_utf8("\u0958"), "\u0915\u093C");       // excluded from composition
  EXPECT_EQ(nfc_utf8("\u0915\u093C"), "\u0915\u093C");
  EXPECT_EQ(nfc_utf8("\u0344"), "\u0308\u0301");       // a non-starter decomposition
}

TEST(Nfc, Hangul) {
  EXPECT_EQ(nfc_utf8("\u1100\u1161"), "\uAC00");         // L V -> LV
  EXPECT_EQ(nfc_utf8("\u1100\u1161\u11A8"), "\uAC01");   // L V T -> LVT
  EXPECT_EQ(nfc_utf8("\uAC00\u11A8"), "\uAC01");         // LV T -> LVT
  EXPECT_EQ(nfc_utf8("\uAC01"), "\uAC01");
  EXPECT_EQ(nfc_utf8("\uAC01\u11A8"), "\uAC01\u11A8");   // an LVT takes no further T
  EXPECT_EQ(nfc_utf8("\u1100\u1100"), "\u1100\u1100");
  EXPECT_EQ(nfc_utf8("\uD55C\uAD6D\uC5B4"), "\uD55C\uAD6D\uC5B4");
}

// The reference has Unicode 9.0 tables; these would change under a later NFC.
TEST(Nfc, KeepsUnicode9Behaviour) {
  EXPECT_EQ(nfc_utf8("\U00011935\U00011930"), "\U00011935\U00011930");  // composite added in 13.0
  EXPECT_EQ(nfc_utf8("a\u07FD\u0334"), "a\u07FD\u0334");                // U+07FD (11.0) has class 0 here
  EXPECT_EQ(unicode::combining_class(0x07FD), 0);
}

TEST(Nfc, IllFormedBytesPassThroughAndBlock) {
  EXPECT_EQ(nfc_utf8("e\xFF\u0301"), "e\xFF\u0301");
  EXPECT_EQ(nfc_utf8("\xE4\xBD" "e\u0301"), "\xE4\xBD\u00E9");
}

std::vector<std::string> split(const std::string& text) {
  const std::u32string units = unicode::decode_units(text);
  std::vector<size_t> ends;
  split_gpt2(units, ends);
  std::vector<std::string> out;
  size_t begin = 0;
  for (const size_t end : ends) {
    out.emplace_back();
    unicode::append_units(out.back(), std::u32string_view(units).substr(begin, end - begin));
    begin = end;
  }
  return out;
}

using Pieces = std::vector<std::string>;

TEST(Gpt2Split, Contractions) {
  EXPECT_EQ(split("I'm sure you're"), (Pieces{"I", "'m", " sure", " you", "'re"}));
  EXPECT_EQ(split("we'll they've he'd it's don't"),
            (Pieces{"we", "'ll", " they", "'ve", " he", "'d", " it", "'s", " don", "'t"}));
  EXPECT_EQ(split("DON'T"), (Pieces{"DON", "'", "T"}));  // contractions are lower case only
  EXPECT_EQ(split("' s"), (Pieces{"'", " s"}));
  EXPECT_EQ(split("?'s"), (Pieces{"?'", "s"}));  // a punctuation run takes the apostrophe
}

TEST(Gpt2Split, LettersNumbersPunctuation) {
  EXPECT_EQ(split("abc123 456"), (Pieces{"abc", "123", " 456"}));
  EXPECT_EQ(split("x=1.5e10"), (Pieces{"x", "=", "1", ".", "5", "e", "10"}));
  EXPECT_EQ(split("hi!!? ok"), (Pieces{"hi", "!!?", " ok"}));
  EXPECT_EQ(split("na\u00EFve \u4F60\u597D"), (Pieces{"na\u00EFve", " \u4F60\u597D"}));
  EXPECT_EQ(split("\u00BD\u0663"), (Pieces{"\u00BD\u0663"}));  // both \p{N}
  EXPECT_EQ(split("e\u0301"), (Pieces{"e", "\u0301"}));       // a mark is neither L nor N
}

TEST(Gpt2Split, WhitespaceRunsBeforeWords) {
  EXPECT_EQ(split("a   b"), (Pieces{"a", "  ", " b"}));  // the last space joins the word
  EXPECT_EQ(split("a\n\n b"), (Pieces{"a", "\n\n", " b"}));
  EXPECT_EQ(split("\t x"), (Pieces{"\t", " x"}));
  EXPECT_EQ(split("a\tb"), (Pieces{"a", "\t", "b"}));
  EXPECT_EQ(split("a \nb"), (Pieces{"a", " ", "\n", "b"}));
  EXPECT_EQ(split("x  "), (Pieces{"x", "  "}));  // trailing whitespace stays whole
  EXPECT_EQ(split(" "), (Pieces{" "}));
  EXPECT_EQ(split(""), (Pieces{}));
}

TEST(Gpt2Split, OnigurumaWhitespaceClass) {
  EXPECT_EQ(split("a\u0085b"), (Pieces{"a", "\u0085", "b"}));  // NEL is \s
  EXPECT_EQ(split(" \uFEFFx"), (Pieces{" \uFEFF", "x"}));       // BOM is not
  // Only U+0020 may lead a word; other whitespace stands alone.
  EXPECT_EQ(split("a\u3000\u3000b"), (Pieces{"a", "\u3000", "\u3000", "b"}));
}

TEST(ByteLevel, Alphabet) {
  EXPECT_EQ(byte_level_char('!'), U'!');
  EXPECT_EQ(byte_level_char(' '), char32_t(0x120));   // 'Ġ'
  EXPECT_EQ(byte_level_char('\n'), char32_t(0x10A));  // 'Ċ'
  EXPECT_EQ(byte_level_char(0), char32_t(0x100));
  EXPECT_EQ(byte_level_char(0xAD), char32_t(0x143));
  EXPECT_EQ(byte_level_char(0xFF), char32_t(0xFF));
  for (unsigned b = 0; b < 256; ++b) EXPECT_EQ(byte_level_byte(byte_level_char(uint8_t(b))), uint8_t(b));
  EXPECT_FALSE(byte_level_byte(U' ').has_value());
  EXPECT_EQ(byte_level_encode(" hello\n"), "\u0120hello\u010A");
}

TEST(ByteLevel, DecodeFallsBackToVerbatim) {
  EXPECT_EQ(byte_level_decode("\u0120hello"), " hello");
  EXPECT_EQ(byte_level_decode("\u00C3\u00A9"), "\xC3\xA9");  // "Ã©" is the two bytes of 'é'
  EXPECT_EQ(byte_level_decode("  "), "  ");                  // a space is not in the alphabet
  EXPECT_EQ(byte_level_decode("<|endoftext|>"), "<|endoftext|>");
}

}  // namespace
}  // namespace aviary
