// The sparse value product (ops/sparse_ffn.h): every SIMD variant on the
// float panels against the plain scalar reference for every float weight
// type, odd shapes (partial panels) and every share of zeros; its promise to
// sum like the dense panel product whatever the thread count; its checks.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "ops/linear.h"
#include "ops/sparse_ffn.h"
#include "simd_test_util.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

// Squared-ReLU-like activations of which a share `zero_share` is exactly zero.
std::vector<float> activations(int64_t F, double zero_share, uint32_t seed) {
  std::vector<float> h = random_vector(size_t(F), seed);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (float& x : h) x = u(rng) < zero_share ? 0.f : x * x;
  return h;
}

constexpr double kZeroShares[] = {0.0, 0.5, 0.9, 1.0};

using Param = std::tuple<std::string, DType>;  // SIMD variant, weight type

class SimdSparseFfn : public ForcedSimdTest<Param> {
 protected:
  DType dtype() const { return std::get<1>(GetParam()); }
};

// W [C, F] in the kernels' panels (as models load it); `panels` owns them.
Matrix packed(const StoredWeights& w, DType t, int64_t C, int64_t F, std::vector<uint8_t>& panels) {
  Matrix W{w.data(), t, C, F};
  panels.assign(linear_pack_bytes(W), 0);
  if (!panels.empty()) {
    linear_pack(W, panels.data());
    W.packed = panels.data();
  }
  return W;
}

TEST_P(SimdSparseFfn, MatchesReference) {
  ASSERT_EQ(simd_target(), std::get<0>(GetParam()));
  for (int64_t F : kOddSizes)
    for (int64_t C : kOddSizes) {
      if (F * C > 300'000) continue;
      const auto w = stored_weights(F * C, dtype(), uint32_t(F * 5 + C));
      std::vector<uint8_t> panels;
      const Matrix W = packed(w, dtype(), C, F, panels);
      for (double zeros : kZeroShares) {
        const auto h = activations(F, zeros, uint32_t(F + C));
        const double tol = sum_tolerance(F, double(max_abs(h)) * w.max_abs);
        const size_t n = static_cast<size_t>(C);
        std::vector<float> y(n, -1.f), ref(n);
        sparse_linear(h.data(), F, W, y.data());
        reference::sparse_linear(h.data(), F, W, ref.data());
        for (size_t c = 0; c < y.size(); ++c) {
          ASSERT_NEAR(y[c], ref[c], tol) << C << "x" << F << " zeros=" << zeros << " c=" << c;
          if (zeros == 1.0) {
            ASSERT_EQ(y[c], 0.f);
          }
        }
      }
    }
}

// The promise of sparse_ffn.h: the dense panel product's numbers, for any
// thread count (each output sums in one order on every split).
TEST_P(SimdSparseFfn, EqualsTheDenseProductForAnyThreadCount) {
  const int before = default_thread_count();
  for (auto [C, F] : {std::pair<int64_t, int64_t>{768, 3072}, {130, 1000}, {129, 448}, {4099, 33}}) {
    const auto w = stored_weights(F * C, dtype(), 23);
    std::vector<uint8_t> panels;
    const Matrix W = packed(w, dtype(), C, F, panels);
    for (double zeros : kZeroShares) {
      const auto h = activations(F, zeros, 29);
      std::vector<float> dense(static_cast<size_t>(C));
      linear(h.data(), 1, W, dense.data());
      for (int threads : {1, 2, 3, 5}) {
        set_default_thread_count(threads);
        std::vector<float> y(static_cast<size_t>(C));
        sparse_linear(h.data(), F, W, y.data());
        for (size_t c = 0; c < y.size(); ++c)
          ASSERT_EQ(y[c], dense[c]) << C << "x" << F << " zeros=" << zeros << " threads=" << threads << " c=" << c;
      }
    }
  }
  set_default_thread_count(before);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, SimdSparseFfn,
                         ::testing::Combine(::testing::ValuesIn(simd_variants()),
                                            ::testing::Values(DType::F32, DType::F16, DType::BF16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
                         });

TEST(SparseFfn, CountNonzero) {
  const std::vector<float> h = {0.f, 1.f, -0.f, 2.f, 0.f, std::nanf("")};
  EXPECT_EQ(count_nonzero(h.data(), int64_t(h.size())), 3);
  EXPECT_EQ(count_nonzero(h.data(), 0), 0);
}

TEST(SparseFfn, RefusesQuantizedOrMisshapenMatrices) {
  std::vector<uint8_t> bytes(4 * 34);
  std::vector<float> h(32, 1.f), y(4);
  EXPECT_THROW(sparse_linear(h.data(), 32, Matrix{bytes.data(), DType::Q8_0, 4, 32}, y.data()), Error);
  EXPECT_THROW(reference::sparse_linear(h.data(), 32, Matrix{bytes.data(), DType::Q8_0, 4, 32}, y.data()), Error);
  const std::vector<float> w(12, 1.f);
  EXPECT_THROW(sparse_linear(h.data(), 5, Matrix{w.data(), DType::F32, 3, 4}, y.data()), Error);
}

// Without panels (a matrix not packed) the reference loops give the product.
TEST(SparseFfn, UnpackedMatrixTakesTheReference) {
  const std::vector<float> w = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};  // [2, 3]
  const std::vector<float> h = {1.f, 0.f, 2.f};
  std::vector<float> y(2);
  sparse_linear(h.data(), 3, Matrix{w.data(), DType::F32, 2, 3}, y.data());
  EXPECT_EQ(y[0], 7.f);
  EXPECT_EQ(y[1], 16.f);
}

}  // namespace
}  // namespace aviary::ops
