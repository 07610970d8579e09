// Every SIMD variant of the vectorised activations (ops/activation.h) and
// array helpers (ops/elementwise.h) against
// the libm reference, over odd lengths and the input ranges the models feed,
// plus the extremes; and position independence (a value is the same wherever
// it lies in the array, which sequence == token-by-token mode relies on).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "simd_test_util.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

using SimdActivation = ForcedSimdTest<std::string>;

// Relative error within 4e-7 (a few ULP) or absolute 1e-30 near zero.
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], ref[i], 4e-7 * std::fabs(ref[i]) + 1e-30) << what << " n=" << got.size() << " i=" << i;
}

template <class F, class R>
void check(const std::string& what, float sd, F f, R ref) {
  for (int64_t n : kOddSizes) {
    std::vector<float> x = random_vector(size_t(n), uint32_t(n * 3 + 1), 0.f, sd);
    std::vector<float> expect = x;
    f(x.data(), n);
    ref(expect.data(), n);
    expect_close(x, expect, what);
  }
}

TEST_P(SimdActivation, SigmoidMatchesReference) {
  check("sigmoid", 4.f, [](float* y, int64_t n) { sigmoid_inplace(y, n); },
        [](float* y, int64_t n) { reference::sigmoid_inplace(y, n); });
  // Saturation: no overflow to NaN for large |x|.
  std::vector<float> x = {-1e30f, -200.f, -88.f, -20.f, 0.f, 20.f, 200.f, 1e30f, -0.f};
  sigmoid_inplace(x.data(), int64_t(x.size()));
  EXPECT_LT(x[0], 1e-37f);
  EXPECT_LT(x[1], 1e-37f);
  EXPECT_NEAR(x[2], 1.f / (1.f + std::exp(88.f)), 1e-40);
  EXPECT_EQ(x[4], 0.5f);
  EXPECT_EQ(x[6], 1.f);
  EXPECT_EQ(x[7], 1.f);
  EXPECT_EQ(x[8], 0.5f);
  for (float v : x) EXPECT_FALSE(std::isnan(v));
}

TEST_P(SimdActivation, TanhMatchesReference) {
  check("tanh", 3.f, [](float* y, int64_t n) { tanh_inplace(y, n); },
        [](float* y, int64_t n) { reference::tanh_inplace(y, n); });
  std::vector<float> x = {-1e30f, -30.f, 0.f, 30.f, 1e30f};
  tanh_inplace(x.data(), int64_t(x.size()));
  EXPECT_EQ(x[0], -1.f);
  EXPECT_EQ(x[1], -1.f);
  EXPECT_EQ(x[2], 0.f);
  EXPECT_EQ(x[3], 1.f);
  EXPECT_EQ(x[4], 1.f);
}

TEST_P(SimdActivation, ExpMatchesReference) {
  // The RWKV-7 decay: exp(-0.606531 * sigmoid), arguments in (-0.61, 0).
  check("decay", 1.f, [](float* y, int64_t n) { exp_inplace(y, -0.606531f, n); },
        [](float* y, int64_t n) { reference::exp_inplace(y, -0.606531f, n); });
  check("exp", 20.f, [](float* y, int64_t n) { exp_inplace(y, 1.f, n); },
        [](float* y, int64_t n) { reference::exp_inplace(y, 1.f, n); });
}

TEST_P(SimdActivation, ReluSquaredEqualsReference) {
  for (int64_t n : kOddSizes) {
    std::vector<float> x = random_vector(size_t(n), uint32_t(n + 5)), expect = x;
    relu_squared_inplace(x.data(), n);
    reference::relu_squared_inplace(expect.data(), n);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], expect[i]) << n << " " << i;  // exact: one max, one product
  }
  std::vector<float> x = {-0.f, -1.f, 2.f, std::numeric_limits<float>::quiet_NaN()};
  relu_squared_inplace(x.data(), 4);
  EXPECT_EQ(x[0], 0.f);
  EXPECT_EQ(x[1], 0.f);
  EXPECT_EQ(x[2], 4.f);
}

// add and mul are exact; the token-shift lerp is one fused multiply-add where
// the target has one (the reference rounds the product first): within an ulp
// or so of the operands.
TEST_P(SimdActivation, ArrayHelpersMatchReference) {
  for (int64_t n : kOddSizes) {
    const auto x = random_vector(size_t(n), uint32_t(n + 11)), prev = random_vector(size_t(n), uint32_t(n + 12));
    const auto mix = random_vector(size_t(n), uint32_t(n + 13), 0.5f, 0.5f);
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    token_shift_mix(x.data(), prev.data(), mix.data(), n, got.data());
    reference::token_shift_mix(x.data(), prev.data(), mix.data(), n, want.data());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 3e-7 * (std::fabs(x[i]) + std::fabs(prev[i]))) << n << " " << i;
    std::vector<float> in_place = x;  // out == x, as the value-residual mix calls it
    token_shift_mix(in_place.data(), prev.data(), mix.data(), n, in_place.data());
    EXPECT_EQ(in_place, got) << n;
    for (const bool add : {true, false}) {
      std::vector<float> y = x, y_ref = x;
      if (add) {
        add_inplace(y.data(), prev.data(), n);
        reference::add_inplace(y_ref.data(), prev.data(), n);
      } else {
        mul_inplace(y.data(), prev.data(), n);
        reference::mul_inplace(y_ref.data(), prev.data(), n);
      }
      EXPECT_EQ(y, y_ref) << n << (add ? " add" : " mul");
    }
  }
}

TEST_P(SimdActivation, ValueDoesNotDependOnPosition) {
  const std::vector<float> x = random_vector(1000, 7, 0.f, 3.f);
  std::vector<float> all = x;
  sigmoid_inplace(all.data(), int64_t(all.size()));
  for (size_t start : {size_t(0), size_t(1), size_t(5), size_t(17), size_t(999)}) {
    std::vector<float> part(x.begin() + std::ptrdiff_t(start), x.end());
    sigmoid_inplace(part.data(), int64_t(part.size()));
    for (size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], all[start + i]) << start << " " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdActivation, ::testing::ValuesIn(simd_variants()));

}  // namespace
}  // namespace aviary::ops
