// The sparse value product (ops/sparse_ffn.h): every SIMD variant against the
// plain scalar reference for every float weight type, odd shapes and every
// share of zeros; its promise to sum like linear_in_out whatever the thread
// count; and the transposed copy it reads.
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

TEST_P(SimdSparseFfn, MatchesReference) {
  ASSERT_EQ(simd_target(), std::get<0>(GetParam()));
  for (int64_t F : kOddSizes)
    for (int64_t C : kOddSizes) {
      const auto w = stored_weights(F * C, dtype(), uint32_t(F * 5 + C));
      const auto wu = stored_weights(F * C, dtype(), uint32_t(F * 5 + C), 2);  // unaligned rows
      const Matrix Wt{w.data(), dtype(), F, C}, Wtu{wu.data(), dtype(), F, C};
      for (double zeros : kZeroShares) {
        const auto h = activations(F, zeros, uint32_t(F + C));
        const double tol = sum_tolerance(F, double(max_abs(h)) * w.max_abs);
        const size_t n = static_cast<size_t>(C);
        std::vector<float> y(n, -1.f), yu(n), ref(n);
        sparse_rows_sum(h.data(), F, Wt, y.data());
        sparse_rows_sum(h.data(), F, Wtu, yu.data());
        reference::sparse_rows_sum(h.data(), F, Wt, ref.data());
        for (size_t c = 0; c < y.size(); ++c) {
          ASSERT_NEAR(y[c], ref[c], tol) << F << "x" << C << " zeros=" << zeros << " c=" << c;
          ASSERT_EQ(yu[c], y[c]) << "unaligned " << F << "x" << C << " zeros=" << zeros << " c=" << c;
          if (zeros == 1.0) {
            ASSERT_EQ(y[c], 0.f);
          }
        }
      }
    }
}

// The promise of sparse_ffn.h: the dense transposed product's numbers,
// for any thread count (each column sums in one order on every split).
TEST_P(SimdSparseFfn, EqualsLinearInOutForAnyThreadCount) {
  const int before = default_thread_count();
  for (auto [F, C] : {std::pair<int64_t, int64_t>{3072, 768}, {1000, 130}, {448, 129}, {33, 4099}}) {
    const auto w = stored_weights(F * C, dtype(), 23);
    const Matrix Wt{w.data(), dtype(), F, C};
    for (double zeros : kZeroShares) {
      const auto h = activations(F, zeros, 29);
      std::vector<float> dense(static_cast<size_t>(C));
      linear_in_out(h.data(), 1, Wt, dense.data());
      for (int threads : {1, 2, 3, 5}) {
        set_default_thread_count(threads);
        std::vector<float> y(static_cast<size_t>(C));
        sparse_rows_sum(h.data(), F, Wt, y.data());
        for (size_t c = 0; c < y.size(); ++c)
          ASSERT_EQ(y[c], dense[c]) << F << "x" << C << " zeros=" << zeros << " threads=" << threads << " c=" << c;
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
  std::vector<uint8_t> bytes(34 * 4);
  std::vector<float> h(32, 1.f), y(4);
  EXPECT_THROW(sparse_rows_sum(h.data(), 4, Matrix{bytes.data(), DType::Q8_0, 4, 32}, y.data()), Error);
  EXPECT_THROW(reference::sparse_rows_sum(h.data(), 4, Matrix{bytes.data(), DType::Q8_0, 4, 32}, y.data()), Error);
  EXPECT_THROW(transpose_copy(Matrix{bytes.data(), DType::Q8_0, 4, 32}), Error);
  const std::vector<float> w(12, 1.f);
  EXPECT_THROW(sparse_rows_sum(h.data(), 5, Matrix{w.data(), DType::F32, 3, 4}, y.data()), Error);
}

TEST(SparseFfn, TransposeCopyKeepsTheTypeAndMovesEveryElement) {
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 70}, {65, 33}, {130, 1}, {0, 5}}) {
      const auto w = stored_weights(rows * cols, t, uint32_t(rows + cols), 2);
      const Matrix W{w.data(), t, rows, cols};
      const OwnedMatrix Wt = transpose_copy(W);
      ASSERT_EQ(Wt.matrix.dtype, t);
      ASSERT_EQ(Wt.matrix.rows, cols);
      ASSERT_EQ(Wt.matrix.cols, rows);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          ASSERT_EQ(load_as_f32(Wt.matrix.data, t, size_t(c * rows + r)), load_as_f32(W.data, t, size_t(r * cols + c)))
              << dtype_name(t) << " " << rows << "x" << cols << " at " << r << "," << c;
    }
}

}  // namespace
}  // namespace aviary::ops
