// Parsing of the vocabulary file format: Python literals, line structure and
// the errors a malformed file produces. Uses small synthetic vocabularies.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "common/test_util.h"
#include "text/py_literal.h"
#include "text/tokenizer.h"
#include "text/world_tokenizer.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::error_of;

// Lines 1..256: one token per byte (id = byte + 1), as in the World file.
std::string byte_lines() {
  std::string s;
  char buf[32];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "%d b'\\x%02x' 1\n", b + 1, b);
    s += buf;
  }
  return s;
}

TEST(PyLiteral, PlainAndQuoted) {
  EXPECT_EQ(parse_python_literal("'abc'"), "abc");
  EXPECT_EQ(parse_python_literal("' a b '"), " a b ");
  EXPECT_EQ(parse_python_literal("\"'\""), "'");
  EXPECT_EQ(parse_python_literal("'\"'"), "\"");
  EXPECT_EQ(parse_python_literal("\"!'\""), "!'");
  EXPECT_EQ(parse_python_literal("'\\''"), "'");
  EXPECT_EQ(parse_python_literal("''"), "");
  EXPECT_EQ(parse_python_literal("'\xE4\xBD\xA0'"), "\xE4\xBD\xA0");  // raw UTF-8 in a str
}

TEST(PyLiteral, Escapes) {
  EXPECT_EQ(parse_python_literal("'\\\\'"), "\\");
  EXPECT_EQ(parse_python_literal("'\\t\\n\\r\\a\\b\\f\\v'"), "\t\n\r\a\b\f\v");
  EXPECT_EQ(parse_python_literal("'\\x00'"), std::string(1, '\0'));
  EXPECT_EQ(parse_python_literal("'\\0'"), std::string(1, '\0'));
  EXPECT_EQ(parse_python_literal("'\\101\\7'"), "A\a");
  EXPECT_EQ(parse_python_literal("'\\u2002'"), "\xE2\x80\x82");
  EXPECT_EQ(parse_python_literal("'\\U0001F600'"), "\xF0\x9F\x98\x80");
  // In a str, \x80 is the code point U+0080, which UTF-8 encodes as two bytes.
  EXPECT_EQ(parse_python_literal("'\\x80'"), "\xC2\x80");
  EXPECT_EQ(parse_python_literal("'\\q'"), "\\q");  // unknown escapes stay verbatim
}

TEST(PyLiteral, BytesLiterals) {
  EXPECT_EQ(parse_python_literal("b'\\x80'"), "\x80");
  EXPECT_EQ(parse_python_literal("b\"\\xff'\""), "\xFF'");
  EXPECT_EQ(parse_python_literal("B'\\xe4\\xbd'"), "\xE4\xBD");
  EXPECT_EQ(parse_python_literal("b'\\377'"), "\xFF");
  EXPECT_EQ(parse_python_literal("b'\\u1234'"), "\\u1234");  // no \u in bytes
}

TEST(PyLiteral, Errors) {
  auto err = [](const char* lit) { return error_of([&] { parse_python_literal(lit); }); };
  EXPECT_NE(err("abc").find("expected a Python str or bytes literal"), std::string::npos);
  EXPECT_NE(err("'abc").find("not closed"), std::string::npos);
  EXPECT_NE(err("'").find("not closed"), std::string::npos);
  EXPECT_NE(err("'ab\\'").find("backslash at the end"), std::string::npos);
  EXPECT_NE(err("'a'b'").find("unescaped quote"), std::string::npos);
  EXPECT_NE(err("'\\x4'").find("truncated \\x"), std::string::npos);
  EXPECT_NE(err("'\\u12'").find("truncated \\u"), std::string::npos);
  EXPECT_NE(err("'\\ud800'").find("surrogate"), std::string::npos);
  EXPECT_NE(err("'\\U00110000'").find("U+10FFFF"), std::string::npos);
  EXPECT_NE(err("'\\N{BULLET}'").find("\\N{name}"), std::string::npos);
  EXPECT_NE(err("b'\xC3\xA9'").find("non-ASCII"), std::string::npos);
  EXPECT_NE(err("b'\\777'").find("0o377"), std::string::npos);
  EXPECT_NE(err("'\xE4\xBD'").find("not valid UTF-8"), std::string::npos);
}

TEST(WorldVocab, GreedyLongestMatchDoesNotBacktrack) {
  const std::string text = byte_lines() + "257 'ab' 2\n258 'abcd' 4\n259 'bc' 2\n260 '\\u4f60' 3\n";
  const WorldTokenizer tok = WorldTokenizer::parse(text, "mini.txt");
  EXPECT_EQ(tok.vocab_size(), 261);
  EXPECT_EQ(tok.encode("abcd"), (std::vector<int32_t>{258}));
  // "abce": longest match at 0 is "ab" (not "a" + "bc"), then "c", "e".
  EXPECT_EQ(tok.encode("abce"), (std::vector<int32_t>{257, 'c' + 1, 'e' + 1}));
  EXPECT_EQ(tok.encode("xbc\xE4\xBD\xA0"), (std::vector<int32_t>{'x' + 1, 259, 260}));
  EXPECT_EQ(tok.encode(""), std::vector<int32_t>{});
}

TEST(WorldVocab, ToleratesCrlfAndMissingFinalNewline) {
  std::string text = byte_lines() + "257 'ab' 2\r\n258 ' x' 2";
  const WorldTokenizer tok = WorldTokenizer::parse(text, "crlf.txt");
  EXPECT_EQ(tok.token_bytes(257), "ab");
  EXPECT_EQ(tok.token_bytes(258), " x");
}

TEST(WorldVocab, GapsInIdsAreNotTokens) {
  const WorldTokenizer tok = WorldTokenizer::parse(byte_lines() + "300 'ab' 2\n", "gap.txt");
  EXPECT_EQ(tok.vocab_size(), 301);
  EXPECT_EQ(tok.token_bytes(300), "ab");
  EXPECT_THROW(tok.token_bytes(280), Error);
}

// Each malformed line must give an error naming the source and line number.
TEST(WorldVocab, MalformedLinesNameTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"257 'ab' 3", "literal has 2 bytes but the length column says 3"},
      {"257 'ab'", "expected \"<id> <Python str or bytes literal> <byte length>\""},
      {"x57 'ab' 2", "bad token id \"x57\""},
      {"257 'ab' 2x", "bad byte length \"2x\""},
      {"257 ab 2", "expected a Python str or bytes literal"},
      {"257 'ab 2", "not closed"},
      {"0 'ab' 2", "id 0 is reserved for end-of-text"},
      {"1 'ab' 2", "token id 1 appears twice"},
      {"257 '' 0", "empty token"},
      {"", "expected \"<id>"},
  };
  for (const auto& [line, message] : cases) {
    const std::string text = byte_lines() + line + "\n";
    const std::string err = error_of([&] { WorldTokenizer::parse(text, "bad.txt"); });
    EXPECT_NE(err.find("bad.txt:257: "), std::string::npos) << line << " -> " << err;
    EXPECT_NE(err.find(message), std::string::npos) << line << " -> " << err;
  }
}

TEST(WorldVocab, MissingSingleByteTokenIsAnError) {
  std::string text = byte_lines();
  text.erase(text.find("66 b'\\x41' 1\n"), 13);  // drop "A"
  const std::string err = error_of([&] { WorldTokenizer::parse(text, "nobyte.txt"); });
  EXPECT_NE(err.find("nobyte.txt: the vocabulary has no token for the single byte 0x41"), std::string::npos)
      << err;
  EXPECT_NE(error_of([] { WorldTokenizer::parse("", "empty.txt"); }).find("empty.txt"), std::string::npos);
}

TEST(WorldVocab, LoadNamesMissingFile) {
  const std::string err = error_of([] { WorldTokenizer::load("/nonexistent/vocab.txt"); });
  EXPECT_NE(err.find("/nonexistent/vocab.txt"), std::string::npos) << err;
}

TEST(LoadTokenizer, RejectsUnknownFormats) {
  test::TempDir dir;
  test::write_bytes(dir / "junk.txt", "hello world\n");
  const std::string err = error_of([&] { load_tokenizer((dir / "junk.txt").string()); });
  EXPECT_NE(err.find("unrecognised tokenizer file"), std::string::npos) << err;
  EXPECT_NE(err.find("junk.txt"), std::string::npos) << err;
  test::write_bytes(dir / "empty.txt", "");
  EXPECT_THROW(load_tokenizer((dir / "empty.txt").string()), Error);
}

TEST(LoadTokenizer, DetectsSmallWorldVocabulary) {
  test::TempDir dir;
  test::write_bytes(dir / "v.txt", byte_lines() + "257 'ab' 2\n");
  const auto tok = load_tokenizer((dir / "v.txt").string());
  EXPECT_EQ(tok->name(), "rwkv_world");
  EXPECT_EQ(tok->encode("abab"), (std::vector<int32_t>{257, 257}));
}

}  // namespace
}  // namespace aviary
