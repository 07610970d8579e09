// The sparse feed-forward (model/blocks.h FeedForwardValue): models loaded
// with it on and off (AVIARY_SPARSE_FFN=0) agree on every reference case, in
// decode and in sequence mode; the block itself picks the right path for
// each matrix type and for mixed passes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

#include "common/test_util.h"
#include "model/blocks.h"
#include "model/model.h"
#include "ops/linear.h"
#include "ops/sparse_ffn.h"
#include "util/dtype.h"
#include "ops/simd.h"

namespace aviary {
namespace {

// Sets AVIARY_SPARSE_FFN for the scope, then restores what was there.
class ScopedSparseFfn {
 public:
  explicit ScopedSparseFfn(const char* value) {
    if (const char* old = std::getenv(kName)) saved_ = old;
    ::setenv(kName, value, 1);
  }
  ~ScopedSparseFfn() {
    if (saved_) ::setenv(kName, saved_->c_str(), 1);
    else ::unsetenv(kName);
  }

 private:
  static constexpr const char* kName = "AVIARY_SPARSE_FFN";
  std::optional<std::string> saved_;
};

std::unique_ptr<Model> load_with_sparse_ffn(const std::string& path, bool on) {
  ScopedSparseFfn env(on ? "1" : "0");
  return load_model(path);
}

float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

std::vector<float> flat(const State& s) { return {s.raw().begin(), s.raw().end()}; }

// |a - b| within 1e-5 of b's largest magnitude.
void expect_close_relative(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_LE(test::max_abs_diff(a, b), 1e-5f * std::max(1.f, max_abs(b))) << what;
}

class SparseFfnModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    sparse_ = load_with_sparse_ffn(test::case_model_path(GetParam()), true);
    dense_ = load_with_sparse_ffn(test::case_model_path(GetParam()), false);
    tokens_ = test::case_tokens(GetParam());
  }
  std::unique_ptr<Model> sparse_, dense_;
  std::vector<int32_t> tokens_;
};

TEST_P(SparseFfnModel, DecodeAgreesWithDense) {
  State s_sparse = sparse_->new_state(), s_dense = dense_->new_state();
  std::vector<float> l_sparse, l_dense;
  for (size_t t = 0; t < tokens_.size(); ++t) {
    sparse_->forward({&tokens_[t], 1}, s_sparse, l_sparse);
    dense_->forward({&tokens_[t], 1}, s_dense, l_dense);
    expect_close_relative(l_sparse, l_dense, "logits after token " + std::to_string(t));
  }
  expect_close_relative(flat(s_sparse), flat(s_dense), "final state");
}

// A model without the sparse path reads every weight of every pass.
TEST_P(SparseFfnModel, DenseModelSkipsNoWeightBytes) {
  State s = dense_->new_state();
  std::vector<float> logits;
  for (int32_t tok : tokens_) dense_->forward({&tok, 1}, s, logits);
  EXPECT_EQ(dense_->weight_bytes_skipped(), 0);
}

TEST_P(SparseFfnModel, SequenceModeAgreesWithDense) {
  State s_sparse = sparse_->new_state(), s_dense = dense_->new_state();
  std::vector<float> l_sparse, l_dense;
  sparse_->forward(tokens_, s_sparse, l_sparse, true);
  dense_->forward(tokens_, s_dense, l_dense, true);
  expect_close_relative(l_sparse, l_dense, "logits of every position");
}

// Sparse decode and dense prefill read the same panels in the same order, so they stay bit for bit equal, as the dense paths are.
TEST_P(SparseFfnModel, SequenceModeEqualsTokenByToken) {
  State seq = sparse_->new_state(), rnn = sparse_->new_state();
  std::vector<float> all, one, by_token;
  sparse_->forward(tokens_, seq, all, true);
  for (int32_t tok : tokens_) {
    sparse_->forward({&tok, 1}, rnn, one);
    by_token.insert(by_token.end(), one.begin(), one.end());
  }
  EXPECT_EQ(test::max_abs_diff(all, by_token), 0.f);
  EXPECT_EQ(test::max_abs_diff(flat(seq), flat(rnn)), 0.f);
}

INSTANTIATE_TEST_SUITE_P(AllCases, SparseFfnModel, ::testing::ValuesIn(test::refdata_cases()),
                         [](const auto& info) { return info.param; });

// Sparse needs a float matrix in panels (as projection() loads it) and the switch on.
TEST(FeedForwardValue, SparseOnlyForFloatPanelsAndWhenEnabled) {
  std::vector<uint8_t> bytes(8 * 32 * 2);  // room for the f16 matrix (the q8_0 one needs 8 x 34)
  ops::Matrix f16{bytes.data(), DType::F16, 8, 32}, q8{bytes.data(), DType::Q8_0, 8, 32};
  EXPECT_FALSE(FeedForwardValue(f16, true).sparse());  // not packed
  std::vector<uint8_t> panels(ops::linear_pack_bytes(f16));
  if (!panels.empty()) {
    ops::linear_pack(f16, panels.data());
    f16.packed = panels.data();
    EXPECT_TRUE(FeedForwardValue(f16, true).sparse());
  }
  EXPECT_FALSE(FeedForwardValue(f16, false).sparse());
  EXPECT_FALSE(FeedForwardValue(q8, true).sparse());
  {
    ScopedSparseFfn off("0");
    EXPECT_FALSE(sparse_ffn_enabled());
    EXPECT_FALSE(FeedForwardValue(f16).sparse());
  }
  ScopedSparseFfn on("1");
  EXPECT_TRUE(sparse_ffn_enabled());
}

// A pass mixing one-token segments (sparse rows) with longer ones (dense
// runs) against ops::linear on the panels; and the same rows again
// when so many decode rows are nonzero that the block takes one dense product.
// f32 weights, and f32 weights that hold bf16 values (bf16 panels: a skipped
// column is C elements of 2 bytes).
class FeedForwardValueMixed : public ::testing::TestWithParam<bool> {};

TEST_P(FeedForwardValueMixed, MixedPassesMatchTheDenseProduct) {
  const bool bf16_values = GetParam();
  const int64_t C = 37, F = 150;
  std::vector<float> w(size_t(C * F));
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = std::sin(float(i) * 0.37f);
    if (bf16_values) w[i] = bf16_to_f32(f32_to_bf16(w[i]));
  }
  const int64_t element = bf16_values ? 2 : 4;
  ops::Matrix value{w.data(), DType::F32, C, F};
  std::vector<uint8_t> panels(ops::linear_pack_bytes(value));
  if (panels.empty()) GTEST_SKIP() << "no float panels on this CPU target";
  ops::linear_pack(value, panels.data());
  value.packed = panels.data();
  const FeedForwardValue ffn(value, true);
  ASSERT_TRUE(ffn.sparse());
  const std::vector<int32_t> toks(8, 0);
  // Rows: [0] [1, 4) [4] [5] [6, 8)
  const std::vector<Segment> segs = {{{toks.data(), 1}, 0}, {{toks.data(), 3}, 1}, {{toks.data(), 1}, 4},
                                     {{toks.data(), 1}, 5}, {{toks.data(), 2}, 6}};
  const int64_t T = 8;
  for (double zero_share : {0.95, 0.0}) {  // sparse rows, then too dense: one product
    std::vector<float> h(size_t(T * F));
    for (size_t i = 0; i < h.size(); ++i) {
      const float x = std::cos(float(i) * 1.3f);
      h[i] = (double(i % 20) < zero_share * 20) ? 0.f : x * x;
    }
    std::vector<float> got(size_t(T * C)), want(size_t(T * C));
    const int64_t skipped = ffn.apply(h.data(), segs, got.data());
    ops::linear(h.data(), T, value, want.data());
    EXPECT_LE(test::max_abs_diff(got, want), 1e-5f * std::max(1.f, max_abs(want))) << zero_share;
    // Bytes against one dense product: the sparse rows' nonzero columns and
    // two dense runs read more than that (negative); one product, nothing.
    const int64_t nonzero = ops::count_nonzero(h.data(), F) + ops::count_nonzero(h.data() + 4 * F, 2 * F);
    EXPECT_EQ(skipped, zero_share > 0.5 ? (F - nonzero - 2 * F) * C * element : 0) << zero_share;
    // Each row alone, as a single decode row, gives the same bits, and skips
    // the columns of its zeros when it takes the sparse path.
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> row(static_cast<size_t>(C));
      const Segment one{{toks.data(), 1}, 0};
      const int64_t row_skipped = ffn.apply(h.data() + t * F, {&one, 1}, row.data());
      const int64_t row_nonzero = ops::count_nonzero(h.data() + t * F, F);
      EXPECT_EQ(row_skipped, 3 * row_nonzero <= F ? (F - row_nonzero) * C * element : 0) << t;
      for (int64_t c = 0; c < C; ++c) ASSERT_EQ(row[size_t(c)], got[size_t(t * C + c)]) << t << "," << c;
    }
  }
}
INSTANTIATE_TEST_SUITE_P(Weights, FeedForwardValueMixed, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "F32HoldingBf16" : "F32"; });

}  // namespace
}  // namespace aviary
