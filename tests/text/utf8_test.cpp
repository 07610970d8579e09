#include <gtest/gtest.h>

#include <random>

#include "text/utf8.h"

namespace aviary {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Feeds `bytes` one byte per push and returns what each push emitted.
std::vector<std::string> push_bytewise(Utf8StreamDecoder& d, const std::string& bytes) {
  std::vector<std::string> outs;
  for (const char c : bytes) outs.push_back(d.push(std::string_view(&c, 1)));
  return outs;
}

TEST(Utf8, ValidityCheck) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n"));
  EXPECT_TRUE(is_valid_utf8("\xE4\xBD\xA0\xE5\xA5\xBD"));   // 你好
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));           // U+10FFFF
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));        // NUL is valid
  EXPECT_FALSE(is_valid_utf8("\xE4\xBD"));                   // cut short
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));                   // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));               // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));           // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_EQ(utf8_error_offset("ab\x80"), 2u);
  EXPECT_EQ(utf8_error_offset("\xE4\xBD\xA0x"), std::string_view::npos);
}

TEST(Utf8, AppendUtf8EncodesEveryLength) {
  std::string s;
  for (const char32_t cp : {U'A', U'\u00E9', U'\u4F60', U'\U0001F600'}) append_utf8(s, cp);
  EXPECT_EQ(s, "A\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x80");
}

TEST(Utf8Stream, ThreeByteCharacterOneByteAtATime) {
  Utf8StreamDecoder d;
  const auto outs = push_bytewise(d, "\xE4\xBD\xA0");  // 你
  EXPECT_EQ(outs, (std::vector<std::string>{"", "", "\xE4\xBD\xA0"}));
  EXPECT_EQ(d.flush(), "");
}

TEST(Utf8Stream, EmojiSplitAcrossPushes) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("ok \xF0\x9F"), "ok ");
  EXPECT_EQ(d.pending_size(), 2u);
  EXPECT_EQ(d.push("\x98"), "");
  EXPECT_EQ(d.push("\x80!"), "\xF0\x9F\x98\x80!");  // 😀!
  EXPECT_EQ(d.flush(), "");
}

TEST(Utf8Stream, EverySplitOfMixedTextReassembles) {
  // Family ZWJ emoji, flag, CJK, combining accent, ASCII.
  const std::string text =
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
      "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5 \xE6\x97\xA5\xE6\x9C\xAC e\xCC\x81 end";
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); b += 3) {
      Utf8StreamDecoder d;
      const std::string p1 = d.push(text.substr(0, a));
      const std::string p2 = d.push(text.substr(a, b - a));
      const std::string p3 = d.push(text.substr(b));
      for (const auto* part : {&p1, &p2, &p3}) EXPECT_TRUE(is_valid_utf8(*part));
      EXPECT_EQ(p1 + p2 + p3 + d.flush(), text) << a << " " << b;
    }
  }
}

TEST(Utf8Stream, InvalidBytesBecomeReplacementAtOnce) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("\xFF"), kFffd);  // can never start a sequence: not held back
  EXPECT_EQ(d.pending_size(), 0u);
  EXPECT_EQ(d.push("a\x80" "b"), "a" + kFffd + "b");
  EXPECT_EQ(d.push("\xE4"), "");
  EXPECT_EQ(d.push("A"), kFffd + "A");  // the held lead byte is now known to be bad
}

// Expected values were produced with Python 3: bytes.decode("utf-8", "replace").
TEST(Utf8Stream, ReplacementMatchesPython) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xF0\x80\x80", repeat(kFffd, 3)},
      {"\xED\xA0\x80", repeat(kFffd, 3)},
      {"\xC0\xAF", repeat(kFffd, 2)},
      {"\xF4\x90\x80\x80", repeat(kFffd, 4)},
      {"\xE4\xBD" "A", kFffd + "A"},
      {"\xE0\x80", repeat(kFffd, 2)},
      {"\xF0\x9F\x98", kFffd},
      {"\xE4\xBD", kFffd},
      {"\xF8\x88\x80\x80\x80", repeat(kFffd, 5)},
      {"\xE4\xE4\xBD\xA0", kFffd + "\xE4\xBD\xA0"},
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(utf8_replace_invalid(in), want);
    Utf8StreamDecoder d;  // byte by byte must give the same result
    std::string got;
    for (const auto& out : push_bytewise(d, in)) got += out;
    EXPECT_EQ(got + d.flush(), want);
  }
}

TEST(Utf8Stream, FlushEmitsOneReplacementForHeldBytes) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.flush(), "");
  EXPECT_EQ(d.push("x\xF0\x9F\x98"), "x");
  EXPECT_EQ(d.flush(), kFffd);
  EXPECT_EQ(d.pending_size(), 0u);
  EXPECT_EQ(d.push("\xE4\xBD\xA0"), "\xE4\xBD\xA0");  // reusable after flush
}

TEST(Utf8Stream, RandomChunkingAgreesWithWholeDecode) {
  std::mt19937 rng(1234);
  // Bias towards bytes that form (or almost form) multi-byte sequences.
  const std::string alphabet = "aZ \x80\x8F\x90\xBF\xC2\xDF\xE0\xE4\xED\xEF\xF0\xF4\xF5\xFF\xA0\xBD\x9F";
  for (int trial = 0; trial < 500; ++trial) {
    std::string bytes;
    const size_t len = rng() % 40;
    for (size_t i = 0; i < len; ++i) bytes += alphabet[rng() % alphabet.size()];
    Utf8StreamDecoder d;
    std::string got;
    for (size_t pos = 0; pos < bytes.size();) {
      const size_t chunk = 1 + rng() % 4;
      got += d.push(std::string_view(bytes).substr(pos, chunk));
      pos += chunk;
    }
    got += d.flush();
    EXPECT_EQ(got, utf8_replace_invalid(bytes));
    EXPECT_TRUE(is_valid_utf8(got));
  }
}

}  // namespace
}  // namespace aviary
