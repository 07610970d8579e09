// `aviary quantize` end to end: .pth -> GGUF -> GGUF, sizes printed, the
// World vocabulary embedded, and clear errors for what it cannot do.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/test_util.h"

namespace aviary {
namespace {

using test::run_cli;

std::string vocab() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

TEST(QuantizeCli, WritesGgufFromPthAndFromGguf) {
  test::TempDir tmp;
  const std::string in = test::case_model_path("v7_tiny_L2_C128_V1000_fp32");
  const std::string a = (tmp / "a.gguf").string(), b = (tmp / "b.gguf").string();
  auto r = run_cli({"quantize", in, a, "--type", "f16", "--vocab", vocab()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("in:   " + in + " (pth"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("out:  " + a + " (gguf rwkv7, matrices f16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vocab: 999 World tokens embedded"), std::string::npos) << r.out;
  // A GGUF input keeps its embedded vocabulary.
  r = run_cli({"quantize", a, b, "--type", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(gguf,"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vocab: 999 World tokens embedded"), std::string::npos) << r.out;
  EXPECT_LT(test::read_bytes(b).size(), test::read_bytes(in).size());
}

// A GGUF that embeds its vocabulary needs no --vocab (nor a file next to it);
// one that does not still says what it looked for.
TEST(QuantizeCli, GenerateUsesTheEmbeddedVocabulary) {
  test::TempDir tmp;
  const std::string in = test::case_model_path("v7_tiny_L2_C128_V1000_fp32");
  const std::string with = (tmp / "with.gguf").string(), without = (tmp / "without.gguf").string();
  ASSERT_EQ(run_cli({"quantize", in, with, "--type", "f16", "--vocab", vocab()}).exit_code, 0);
  ASSERT_EQ(run_cli({"quantize", in, without, "--type", "f16", "--no-vocab"}).exit_code, 0);
  const std::vector<std::string> gen = {"generate", "-p", "Hello", "-n", "6", "--temperature", "0"};
  auto args = gen;
  args.insert(args.end(), {"-m", with});
  const auto embedded = run_cli(args);
  ASSERT_EQ(embedded.exit_code, 0) << embedded.err;
  // The same tokens from a file: the World vocabulary's first 999 entries, what fits this model.
  const std::string text = test::read_bytes(vocab());
  size_t end = 0;
  for (int line = 0; line < 999; ++line) end = text.find('\n', end) + 1;
  const std::string small = (tmp / "vocab999.txt").string();
  test::write_bytes(small, text.substr(0, end));
  args.insert(args.end(), {"--vocab", small});
  const auto given = run_cli(args);
  ASSERT_EQ(given.exit_code, 0) << given.err;
  EXPECT_EQ(embedded.out, given.out);
  args = gen;
  args.insert(args.end(), {"-m", without});
  const auto none = run_cli(args);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("no vocabulary found"), std::string::npos) << none.err;
}

TEST(QuantizeCli, RefusesOtherArchitecturesAndTypes) {
  test::TempDir tmp;
  const std::string out = (tmp / "x.gguf").string();
  auto r = run_cli({"quantize", test::case_model_path("v6_tiny_L2_C128_V1000_fp32"), out, "--type", "f16", "--no-vocab"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("GGUF output supports RWKV-7 only"), std::string::npos) << r.err;
  r = run_cli({"quantize", test::case_model_path("v7_tiny_L2_C128_V1000_fp32"), out, "--type", "q3_k"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

}  // namespace
}  // namespace aviary
