// The World tokenizer against the official vectors recorded from ChatRWKV's
// TRIE_TOKENIZER (shared/refdata/tokenizer/world_tokenizer_vectors.json).
#include <gtest/gtest.h>

#include <cstdio>

#include "common/test_util.h"
#include "text/tokenizer.h"
#include "text/utf8.h"
#include "text/world_tokenizer.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::from_hex;
using test::to_hex;

std::string vocab_path() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

// Loaded once: every test here reads the same 65k-entry vocabulary.
const WorldTokenizer& world() {
  static const WorldTokenizer tok = WorldTokenizer::load(vocab_path());
  return tok;
}

const nlohmann::json& vectors() {
  static const nlohmann::json v =
      test::read_json(test::refdata_case("tokenizer") / "world_tokenizer_vectors.json");
  return v;
}

std::vector<std::string> token_hexes(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (const int32_t id : ids) out.push_back(to_hex(tok.token_bytes(id)));
  return out;
}

TEST(WorldTokenizer, VocabularyShape) {
  const WorldTokenizer& tok = world();
  EXPECT_EQ(tok.name(), "rwkv_world");
  EXPECT_EQ(tok.vocab_size(), 65530);  // ids 0..65529
  EXPECT_EQ(tok.token_bytes(kEndOfTextId), "");
  EXPECT_EQ(tok.token_bytes(1), std::string(1, '\0'));
  EXPECT_EQ(tok.token_bytes(256), "\xFF");
  EXPECT_EQ(tok.token_bytes(65529), std::string(128, ' '));
}

TEST(WorldTokenizer, EncodeCasesMatchOfficial) {
  const WorldTokenizer& tok = world();
  const auto& cases = vectors().at("encode_cases");
  ASSERT_EQ(cases.size(), 263u);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const std::string bytes = from_hex(c.at("utf8_hex").get<std::string>());
    ASSERT_EQ(text, bytes) << "case " << c.at("id");
    const auto ids = tok.encode(text);
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int32_t>>()) << "case " << c.at("id");
    EXPECT_EQ(token_hexes(tok, ids), c.at("token_bytes_hex").get<std::vector<std::string>>())
        << "case " << c.at("id");
    EXPECT_EQ(tok.decode_bytes(ids), bytes) << "case " << c.at("id");
  }
}

TEST(WorldTokenizer, InvalidUtf8CasesMatchOfficialEncodeBytes) {
  const WorldTokenizer& tok = world();
  const auto& cases = vectors().at("invalid_utf8_encode_cases");
  ASSERT_EQ(cases.size(), 13u);
  for (const auto& c : cases) {
    const std::string bytes = from_hex(c.at("bytes_hex").get<std::string>());
    const auto ids = tok.encode_bytes(bytes);
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int32_t>>()) << "case " << c.at("id");
    EXPECT_EQ(token_hexes(tok, ids), c.at("token_bytes_hex").get<std::vector<std::string>>());
    EXPECT_EQ(to_hex(tok.decode_bytes(ids)), c.at("decodeBytes_hex").get<std::string>());
    // encode() takes text only: these bytes are rejected with their offset.
    if (!is_valid_utf8(bytes)) {
      EXPECT_THROW(tok.encode(bytes), Error) << "case " << c.at("id");
    }
  }
}

TEST(WorldTokenizer, EncodeRejectsInvalidUtf8WithOffset) {
  try {
    world().encode("ok\xE4");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
}

// Official decodeBytes raises KeyError for ids missing from the file. Aviary
// differs for id 0 only: it is end-of-text and decodes to nothing. Any other
// unknown id is an Error naming the id.
TEST(WorldTokenizer, DecodeCasesMatchOfficial) {
  const WorldTokenizer& tok = world();
  const auto& cases = vectors().at("decode_cases");
  ASSERT_EQ(cases.size(), 11u);
  for (const auto& c : cases) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    if (c.contains("decodeBytes_hex")) {
      EXPECT_EQ(to_hex(tok.decode_bytes(ids)), c.at("decodeBytes_hex").get<std::string>()) << c.at("desc");
    } else if (ids == std::vector<int32_t>{kEndOfTextId}) {
      EXPECT_EQ(tok.decode_bytes(ids), "") << c.at("desc");
    } else {
      ASSERT_EQ(ids.size(), 1u);
      try {
        tok.decode_bytes(ids);
        ADD_FAILURE() << "no error for " << c.at("desc");
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token id " + std::to_string(ids[0]) + " is not in"),
                  std::string::npos)
            << e.what();
      }
    }
  }
  EXPECT_THROW(tok.token_bytes(-1), Error);
  EXPECT_THROW(tok.token_bytes(65535), Error);
}

TEST(WorldTokenizer, StreamingDecodeOfSplitCharacter) {
  // "你" as three byte tokens: nothing prints until the character is whole.
  const WorldTokenizer& tok = world();
  Utf8StreamDecoder d;
  std::string shown;
  for (const int32_t id : {229, 190, 161}) {
    const std::string out = d.push(tok.token_bytes(id));
    if (id != 161) {
      EXPECT_EQ(out, "");
    }
    shown += out;
  }
  EXPECT_EQ(shown, "\xE4\xBD\xA0");
}

TEST(LoadTokenizer, DetectsWorldVocabulary) {
  const auto tok = load_tokenizer(vocab_path());
  EXPECT_EQ(tok->name(), "rwkv_world");
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{33155, 40213}));
}

// GPT-NeoX's 20B_tokenizer.json loads as a BPE tokenizer (bpe_tokenizer_test.cpp);
// a HuggingFace file with another kind of model is an error naming the file.
TEST(LoadTokenizer, NonBpeHuggingFaceJsonIsAnError) {
  test::TempDir dir;
  const std::string path = (dir / "wordpiece.json").string();
  test::write_bytes(path, R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  try {
    load_tokenizer(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("only BPE models are supported"), std::string::npos) << msg;
    EXPECT_NE(msg.find("wordpiece.json"), std::string::npos) << msg;
  }
}

// A few MB of the recorded texts round-trip exactly (speed is measured by
// bench/tokenizer_bench.cpp, not here).
TEST(WorldTokenizer, LargeTextRoundTrips) {
  std::string corpus;
  while (corpus.size() < (1u << 20))
    for (const auto& c : vectors().at("encode_cases")) corpus += c.at("text").get<std::string>();
  const auto ids = world().encode(corpus);
  EXPECT_LT(ids.size(), corpus.size());
  EXPECT_EQ(world().decode_bytes(ids), corpus);
}

}  // namespace
}  // namespace aviary
