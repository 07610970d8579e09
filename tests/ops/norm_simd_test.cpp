// Every SIMD variant of LayerNorm (ops/norm.h) against the plain-loop
// reference over odd lengths (full vectors, tails, shorter than a vector) and
// offset means; and position independence (a row normalises to the same bits
// wherever it lies, which sequence == token-by-token mode relies on).
#include <gtest/gtest.h>

#include <cmath>

#include "ops/norm.h"
#include "simd_test_util.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

using SimdNorm = ForcedSimdTest<std::string>;

TEST_P(SimdNorm, LayerNormMatchesReference) {
  for (int64_t n : kOddSizes)
    for (float mean : {0.f, 3.f, -200.f}) {
      const auto x = random_vector(size_t(n), uint32_t(n), mean, 2.f);
      const auto w = random_vector(size_t(n), uint32_t(n + 1)), b = random_vector(size_t(n), uint32_t(n + 2));
      std::vector<float> y(x.size()), ref(x.size());
      layer_norm(x.data(), n, w.data(), b.data(), 1e-5f, y.data());
      reference::layer_norm(x.data(), n, w.data(), b.data(), 1e-5f, ref.data());
      // Only the order of the double sums differs: at most an fp32 rounding
      // of mean or 1/sigma apart, relative to the normalised magnitude.
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-6 * (std::fabs(ref[i]) + std::fabs(w[i]) * 8 + 1)) << "n=" << n << " i=" << i;
    }
}

TEST_P(SimdNorm, LayerNormOfARowIsTheSameAnywhere) {
  const int64_t n = 130;
  const auto x = random_vector(size_t(3 * n), 5, 1.f, 3.f);
  const auto w = random_vector(size_t(n), 6), b = random_vector(size_t(n), 7);
  std::vector<float> alone(static_cast<size_t>(n)), inside(static_cast<size_t>(3 * n));
  for (int64_t r = 0; r < 3; ++r) layer_norm(x.data() + r * n, n, w.data(), b.data(), 1e-5f, inside.data() + r * n);
  std::vector<float> row(x.begin() + n, x.begin() + 2 * n);
  layer_norm(row.data(), n, w.data(), b.data(), 1e-5f, alone.data());
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), inside.begin() + n));
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdNorm, ::testing::ValuesIn(simd_variants()));

}  // namespace
}  // namespace aviary::ops
