// `aviary quantize --type` with the block types Q4_1, Q5_0, Q5_1, Q5_K and
// Q6_K: the file is written, says its type, loads, and its logits stay close
// to the official fp32 ones (closer for more bits).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace aviary {
namespace {

using test::run_cli;

const char* const kCase = "v7_tiny_L2_C128_V1000_fp32";

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// Max |logit - official logit| of the model quantized as `type`, relative to
// the largest official logit.
double relative_logit_error(const std::string& type, const test::TempDir& tmp) {
  const std::string in = test::case_model_path(kCase), out = (tmp / (type + ".gguf")).string();
  auto r = run_cli({"quantize", in, out, "--type", type, "--no-vocab"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("matrices " + type), std::string::npos) << r.out;
  const auto logits = (tmp / ("logits_" + type)).string();
  r = run_cli({"forward", "-m", out, "--tokens", join_ids(test::case_tokens(kCase)), "--logits-out", logits});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto official = test::read_floats(test::refdata_case(kCase) / "logits_rnn.bin");
  float peak = 0;
  for (float v : official) peak = std::max(peak, std::fabs(v));
  return double(test::max_abs_diff(test::read_floats(logits), official)) / peak;
}

TEST(QuantizeTypesCli, EachTypeWritesALoadableModelWithCloseLogits) {
  test::TempDir tmp;
  struct Case {
    const char* type;
    double bound;
  };
  // Bounds about 1.5x what this tiny random model shows (its C = 128 rows
  // stay f16 with the 256-value k types, so those quantize only the F-wide matrices).
  for (const Case& c : {Case{"q4_1", 0.3}, Case{"q5_0", 0.18}, Case{"q5_1", 0.17}, Case{"q5_k", 0.03},
                        Case{"q6_k", 0.015}}) {
    const double err = relative_logit_error(c.type, tmp);
    EXPECT_LT(err, c.bound) << c.type;
    EXPECT_GT(err, 0) << c.type << ": quantized logits equal the fp32 ones exactly";
  }
  // More bits, closer logits.
  EXPECT_LT(relative_logit_error("q5_1", tmp), relative_logit_error("q4_1", tmp));
}

TEST(QuantizeTypesCli, Q6_KFileReportsItsType) {
  test::TempDir tmp;
  const std::string out = (tmp / "m.gguf").string();
  auto r = run_cli({"quantize", test::case_model_path(kCase), out, "--type", "q6_k", "--no-vocab"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // C = 128 rows are not whole 256-value blocks: those matrices fall back to f16 and are listed.
  EXPECT_NE(r.out.find("f16:"), std::string::npos) << r.out;
  r = run_cli({"info", "-m", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("q6_k"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace aviary
