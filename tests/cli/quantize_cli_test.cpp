// `aviary quantize` end to end: .pth -> GGUF -> GGUF, sizes printed, the
// World vocabulary embedded, and clear errors for what it cannot do.
#include <gtest/gtest.h>

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
