// The GPT-NeoX 20B BPE tokenizer against the vectors recorded from HF
// tokenizers (shared/refdata/tokenizer/gptneox20b_tokenizer_vectors.json).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "common/test_util.h"
#include "text/bpe_tokenizer.h"
#include "text/tokenizer.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::from_hex;
using test::to_hex;

std::string tokenizer_path() { return (test::shared_dir() / "vocab" / "20B_tokenizer.json").string(); }

// Loaded once: parsing the 2.4 MB file takes a noticeable moment.
const HfBpeTokenizer& neox() {
  static const std::unique_ptr<HfBpeTokenizer> tok = HfBpeTokenizer::load(tokenizer_path());
  return *tok;
}

const nlohmann::json& vectors() {
  static const nlohmann::json v =
      test::read_json(test::refdata_case("tokenizer") / "gptneox20b_tokenizer_vectors.json");
  return v;
}

std::string describe(const nlohmann::json& c) {
  return c.at("category").get<std::string>() + " case " + c.at("utf8_hex").get<std::string>();
}

TEST(BpeTokenizer, VocabularyShape) {
  const HfBpeTokenizer& tok = neox();
  EXPECT_EQ(tok.name(), "hf_bpe");
  EXPECT_EQ(tok.vocab_size(), 50277);
  EXPECT_EQ(tok.vocab_size(), vectors().at("tokenizer").at("n_ids").get<int32_t>());
  EXPECT_EQ(tok.token_bytes(0), "<|endoftext|>");
  EXPECT_EQ(tok.token_bytes(1), "<|padding|>");
  EXPECT_EQ(tok.token_bytes(50276), "  ");
  EXPECT_EQ(tok.token_bytes(50254), std::string(24, ' '));
  EXPECT_EQ(tok.token_bytes(209), " ");  // "Ġ"
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(50276));
}

TEST(BpeTokenizer, EncodeCasesMatchReference) {
  const HfBpeTokenizer& tok = neox();
  const auto& cases = vectors().at("cases");
  ASSERT_EQ(cases.size(), 263u);
  int matched = 0;
  for (const auto& c : cases) {
    const std::string bytes = from_hex(c.at("utf8_hex").get<std::string>());
    ASSERT_EQ(c.at("text").get<std::string>(), bytes) << describe(c);
    const auto ids = tok.encode(bytes);
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(ids, expected) << describe(c);
    // NFC may change the text; the ids then decode to the normalised bytes.
    const std::string decoded = c.contains("decoded_utf8_hex") ? c.at("decoded_utf8_hex").get<std::string>()
                                                               : c.at("utf8_hex").get<std::string>();
    EXPECT_EQ(to_hex(tok.decode_bytes(expected)), decoded) << describe(c);
    EXPECT_EQ(tok.encode_bytes(bytes), ids) << describe(c);  // the same for valid UTF-8
    matched += ids == expected;
  }
  EXPECT_EQ(matched, 263);
}

TEST(BpeTokenizer, DecodeCasesMatchReference) {
  const HfBpeTokenizer& tok = neox();
  const auto& cases = vectors().at("decode_cases");
  ASSERT_EQ(cases.size(), 35u);
  for (const auto& c : cases) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(to_hex(tok.decode_bytes(ids)), c.at("bytes_hex").get<std::string>()) << c.at("desc");
    std::vector<int32_t> kept;
    for (const int32_t id : ids)
      if (!tok.is_special(id)) kept.push_back(id);
    EXPECT_EQ(to_hex(tok.decode_bytes(kept)), c.at("bytes_hex_skip_special_tokens").get<std::string>())
        << c.at("desc");
  }
}

TEST(BpeTokenizer, EmptyText) {
  EXPECT_TRUE(neox().encode("").empty());
  EXPECT_TRUE(neox().encode_bytes("").empty());
  EXPECT_EQ(neox().decode_bytes({}), "");
}

TEST(BpeTokenizer, AddedTokensInTheMiddleOfText) {
  const HfBpeTokenizer& tok = neox();
  // Special tokens split the words around them: "World" is not " World".
  EXPECT_EQ(tok.encode("Hello<|endoftext|>World"), (std::vector<int32_t>{12092, 0, 14947}));
  // A run of spaces is one added token; the word after it has no space.
  EXPECT_EQ(tok.encode("a  hello"), (std::vector<int32_t>{66, 50276, 25521}));
  // 25 spaces: the longest run token (24) and one space that joins the word.
  EXPECT_EQ(tok.encode("a" + std::string(25, ' ') + "b"), (std::vector<int32_t>{66, 50254, 270}));
  const auto ids = tok.encode("x <|padding|>  y");
  EXPECT_EQ(tok.decode_bytes(ids), "x <|padding|>  y");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 1), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 50276), ids.end());
}

TEST(BpeTokenizer, LoadTokenizerChoosesBpeForJson) {
  const auto tok = load_tokenizer(tokenizer_path());
  EXPECT_EQ(tok->name(), "hf_bpe");
  EXPECT_EQ(tok->vocab_size(), 50277);
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int32_t>{12092, 1533}));
}

TEST(BpeTokenizer, InvalidIdsAreErrorsNamingTheId) {
  const HfBpeTokenizer& tok = neox();
  for (const int32_t id : {-1, 50277, 99999}) {
    try {
      tok.decode_bytes(std::vector<int32_t>{12092, id});
      ADD_FAILURE() << "no error for id " << id;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("token id " + std::to_string(id) + " is not in"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(50277));
}

TEST(BpeTokenizer, EncodeRejectsInvalidUtf8WithOffset) {
  try {
    neox().encode("ok\xE4");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
}

// encode_bytes keeps ill-formed bytes, so the ids give the input back.
TEST(BpeTokenizer, EncodeBytesRoundTripsIllFormedUtf8) {
  const HfBpeTokenizer& tok = neox();
  for (const std::string bytes : {"a\xE4\xBD", "\xE4\xBD  x", "caf\xC3", "\x80\x80 abc", "<|endoftext|>\xED\xA0\x80"}) {
    EXPECT_EQ(tok.decode_bytes(tok.encode_bytes(bytes)), bytes) << to_hex(bytes);
  }
  // The vocabulary has no token for bytes that never occur in UTF-8.
  try {
    tok.encode_bytes("ab\xFF");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0xFF"), std::string::npos) << e.what();
  }
}

// The word cache is shared: encoding on several threads at once must give
// every thread the same ids as encoding alone.
TEST(BpeTokenizer, ConcurrentEncodesAgree) {
  std::vector<std::string> texts;
  for (const auto& c : vectors().at("cases")) texts.push_back(from_hex(c.at("utf8_hex").get<std::string>()));
  std::vector<std::vector<int32_t>> expected;
  for (const auto& t : texts) expected.push_back(neox().encode(t));
  const auto fresh = HfBpeTokenizer::load(tokenizer_path());  // its cache starts empty
  const HfBpeTokenizer& tok = *fresh;
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < texts.size(); ++i) mismatches[t] += tok.encode(texts[(i + t * 17) % texts.size()]) !=
                                                               expected[(i + t * 17) % texts.size()];
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace aviary
