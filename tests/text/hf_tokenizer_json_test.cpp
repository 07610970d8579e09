// HF tokenizers JSON files built in the test: BPE merge order, pre-tokenizer
// settings, unk tokens, added-token matching rules and malformed files.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "text/added_tokens.h"
#include "text/bpe_tokenizer.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace aviary {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// Ids 0..255 are the single bytes (so 'a' is 97), then a few merges.
constexpr int32_t kAA = 256, kBC = 257, kABC = 258, kAG = 259, kGA = 260, kUnk = 299;

json tiny_tokenizer() {
  json vocab = json::object();
  for (unsigned b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, char(b)))] = b;
  vocab["aa"] = kAA;
  vocab["bc"] = kBC;
  vocab["abc"] = kABC;
  vocab["a\u0120"] = kAG;
  vocab["\u0120a"] = kGA;
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"vocab", vocab},
            // "a Ġ" ranks before "Ġ a": only a text without the regex split can show it.
            {"merges", {"a a", "b c", "a bc", "a \u0120", "\u0120 a"}}}}};
}

std::unique_ptr<HfBpeTokenizer> make(const json& j) { return HfBpeTokenizer::parse(j.dump(), "tiny.json"); }

TEST(HfBpe, MergesLowestRankFirstLeftmostOnTies) {
  const auto tok = make(tiny_tokenizer());
  EXPECT_EQ(tok->vocab_size(), 261);
  EXPECT_EQ(tok->encode("aaa"), (Ids{kAA, 'a'}));
  EXPECT_EQ(tok->encode("aaaa"), (Ids{kAA, kAA}));
  EXPECT_EQ(tok->encode("abc"), (Ids{kABC}));  // b+c (rank 1) first, then a+bc (rank 2)
  EXPECT_EQ(tok->encode("a a"), (Ids{'a', kGA}));
  EXPECT_EQ(tok->decode_bytes(tok->encode("abc a aa")), "abc a aa");
}

TEST(HfBpe, PreTokenizerSettings) {
  json j = tiny_tokenizer();
  j["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_EQ(make(j)->encode("a"), (Ids{kGA}));
  EXPECT_EQ(make(j)->encode(" a"), (Ids{kGA}));  // no second space
  j["pre_tokenizer"]["add_prefix_space"] = false;
  j["pre_tokenizer"]["use_regex"] = false;  // the whole text is one word
  EXPECT_EQ(make(j)->encode("a a"), (Ids{kAG, 'a'}));
}

TEST(HfBpe, UnkTokenForBytesWithoutToken) {
  json j = tiny_tokenizer();
  j["model"]["vocab"].erase(byte_level_encode("\xFF"));
  EXPECT_THROW(make(j)->encode_bytes("a\xFF"), Error);
  j["model"]["vocab"]["<unk>"] = kUnk;
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(make(j)->encode_bytes("a\xFF\xFF"), (Ids{'a', kUnk, kUnk}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(make(j)->encode_bytes("a\xFF\xFF"), (Ids{'a', kUnk}));
}

TEST(HfBpe, AddedTokenContentWinsOverVocabEntry) {
  json j = tiny_tokenizer();
  j["added_tokens"] = {{{"id", kAA}, {"content", "<x>"}, {"special", true}}};
  const auto tok = make(j);
  EXPECT_EQ(tok->token_bytes(kAA), "<x>");
  EXPECT_TRUE(tok->is_special(kAA));
  EXPECT_EQ(tok->encode("a<x>a"), (Ids{'a', kAA, 'a'}));
}

using Piece = AddedTokenMatcher::Piece;

std::vector<std::string> texts(const std::string& s, const std::vector<Piece>& pieces) {
  std::vector<std::string> out;
  for (const Piece& p : pieces) {
    out.emplace_back(p.id >= 0 ? "#" : "");  // marks the added tokens
    out.back().append(s, p.begin, p.end - p.begin);
  }
  return out;
}

TEST(AddedTokens, LeftmostLongestMatches) {
  const AddedToken ab{1, "ab"}, abc{2, "abc"}, b{3, "b"}, cd{4, "cd"};
  const AddedTokenMatcher m({{"ab", &ab}, {"abc", &abc}, {"b", &b}, {"cd", &cd}});
  EXPECT_EQ(m.split("xabcdb"), (std::vector<Piece>{{0, 1, -1}, {1, 4, 2}, {4, 5, -1}, {5, 6, 3}}));
  EXPECT_TRUE(m.split("").empty());
  EXPECT_EQ(m.split("zz"), (std::vector<Piece>{{0, 2, -1}}));
}

TEST(AddedTokens, SingleWordNeedsNoWordCharacterAround) {
  AddedToken mask{7, "<mask>"};
  mask.single_word = true;
  const AddedTokenMatcher m({{"<mask>", &mask}});
  const std::string s = "<mask> My name <mask> A<mask> <mask>ony <mask>";
  EXPECT_EQ(texts(s, m.split(s)),
            (std::vector<std::string>{"#<mask>", " My name ", "#<mask>", " A<mask> <mask>ony ", "#<mask>"}));
  const std::string marks = "<mask>, <mask>- \u25CC\u0330<mask>";  // a combining mark is a word character
  EXPECT_EQ(texts(marks, m.split(marks)),
            (std::vector<std::string>{"#<mask>", ", ", "#<mask>", "- \u25CC\u0330<mask>"}));
}

TEST(AddedTokens, LstripAndRstripTakeUnicodeWhitespace) {
  AddedToken mask{7, "<mask>"};
  mask.single_word = mask.lstrip = mask.rstrip = true;
  const AddedTokenMatcher m({{"<mask>", &mask}});
  const std::string s = "Hi <mask> there\t<mask>\t<mask>\u2000";
  EXPECT_EQ(texts(s, m.split(s)),
            (std::vector<std::string>{"Hi", "# <mask> ", "there", "#\t<mask>\t", "#<mask>\u2000"}));
}

// Each malformed file is an Error that names the file and what is wrong.
void expect_error(const std::string& text, const std::string& what) {
  test::TempDir dir;
  const auto path = dir / "tokenizer.json";
  test::write_bytes(path, text);
  try {
    load_tokenizer(path.string());
    ADD_FAILURE() << "no error for " << text.substr(0, 80);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(HfBpeJson, MalformedFilesNameTheProblem) {
  expect_error("{\"model\": ", "not valid JSON");
  expect_error("{\"version\": \"1.0\"}", "no \"model\" object");
  expect_error("{\"model\": [1, 2]}", "model must be an object, not array");
  expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "only BPE models are supported");

  json j = tiny_tokenizer();
  j["model"]["vocab"]["a"] = "97";
  expect_error(j.dump(), "model.vocab[\"a\"] must be a non-negative integer");
  j = tiny_tokenizer();
  j["model"].erase("vocab");
  expect_error(j.dump(), "no \"model.vocab\" object");
  j = tiny_tokenizer();
  j["model"]["merges"] = "a a";
  expect_error(j.dump(), "model.merges must be an array");
  j["model"]["merges"] = {"a a b"};
  expect_error(j.dump(), "model.merges[0] must be two tokens");
  j["model"]["merges"] = {"a a", "x yz"};
  expect_error(j.dump(), "model.merges[1]: token \"yz\" is not in model.vocab");
  j = tiny_tokenizer();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(j.dump(), "normalizer type \"Lowercase\" is not supported");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j.dump(), "pre_tokenizer must be of type \"ByteLevel\"");
  j = tiny_tokenizer();
  j["model"]["dropout"] = 0.1;
  expect_error(j.dump(), "BPE dropout");
  j = tiny_tokenizer();
  j["added_tokens"] = {{{"id", -3}, {"content", "<x>"}}};
  expect_error(j.dump(), "added_tokens[0].id must be a non-negative integer");
  j["added_tokens"] = {{{"id", 3}, {"content", "<x>"}, {"lstrip", "yes"}}};
  expect_error(j.dump(), "added_tokens[0].lstrip must be true or false");
  j["added_tokens"] = {{{"id", 2000000000}, {"content", "<x>"}}};
  expect_error(j.dump(), "token id 2000000000 is too large");
}

}  // namespace
}  // namespace aviary
