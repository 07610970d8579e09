// The AVX512-BF16 products on bf16 float panels (ops/bf16_dot.h): against
// their scalar definition over odd shapes, bit for bit between decode,
// prefill, threads and the sparse decode, within the bf16 rounding bound of
// the fp32 product, and which f16 and f32 matrices become bf16 panels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "ops/bf16_dot.h"
#include "ops/float_panels.h"
#include "ops/linear.h"
#include "ops/reference.h"
#include "ops/sparse_ffn.h"
#include "simd_test_util.h"
#include "util/dtype.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

using test::kOddSizes;
using test::max_abs;
using test::random_vector;
using test::stored_weights;
using test::sum_tolerance;

class Bf16Dot : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = default_thread_count();
    was_enabled_ = bf16dot::enabled();
    if (!was_enabled_) GTEST_SKIP() << "no AVX512-BF16 on this CPU (or AVIARY_BF16_DOT=0)";
  }
  void TearDown() override {
    set_default_thread_count(threads_);
    bf16dot::set_enabled(was_enabled_);
  }
  int threads_ = 1;
  bool was_enabled_ = false;
};

struct Packed {
  Matrix W;
  std::vector<uint8_t> panels;
};

Packed pack(const test::StoredWeights& w, DType t, int64_t rows, int64_t cols) {
  Packed p{Matrix{w.data(), t, rows, cols}, {}};
  p.panels.resize(linear_pack_bytes(p.W));
  linear_pack(p.W, p.panels.data());
  return p;
}

// The bound of rounding the activations to bf16: each term moves by at most
// 2^-8 of |w x|, plus the fp32 summation of both sides.
double rounding_bound(const float* x, const Matrix& W, int64_t o) {
  std::vector<float> w(size_t(W.cols));
  convert_to_f32(W.row_ptr(o), W.dtype, W.cols, w.data());
  double sum = 0;
  for (size_t i = 0; i < w.size(); ++i) sum += std::fabs(double(w[i]) * x[i]);
  return std::ldexp(sum, -8) * 1.01 + 1e-5;
}

TEST_F(Bf16Dot, MatchesTheScalarDefinitionAndRowsAlone) {
  for (int64_t rows : kOddSizes)
    for (int64_t cols : kOddSizes) {
      const auto w = stored_weights(rows * cols, DType::BF16, uint32_t(rows * 13 + cols));
      const Packed p = pack(w, DType::BF16, rows, cols);
      for (int64_t T : {1, 2, 13, 30}) {
        if (rows * cols * T > 2'000'000) continue;
        const auto x = random_vector(size_t(T * cols), uint32_t(T * 5 + cols));
        const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
        std::vector<float> def(size_t(T * rows)), fp32(def.size()), one(static_cast<size_t>(rows));
        bf16dot::reference_linear(x.data(), T, p.W, def.data());
        reference::linear(x.data(), T, p.W, fp32.data());
        for (int threads : {1, 2, 3}) {
          set_default_thread_count(threads);
          std::vector<float> y(def.size());
          linear(x.data(), T, p.W, y.data());
          for (int64_t t = 0; t < T; ++t)
            for (int64_t o = 0; o < rows; ++o) {
              const size_t i = size_t(t * rows + o);
              ASSERT_NEAR(y[i], def[i], tol) << rows << "x" << cols << " T=" << T << " i=" << i;
              ASSERT_NEAR(y[i], fp32[i], rounding_bound(x.data() + t * cols, p.W, o)) << rows << "x" << cols;
            }
          for (int64_t t = 0; t < T; ++t) {
            linear(x.data() + t * cols, 1, p.W, one.data());
            for (int64_t o = 0; o < rows; ++o)
              ASSERT_EQ(one[size_t(o)], y[size_t(t * rows + o)]) << rows << "x" << cols << " T=" << T << " row " << t;
          }
        }
      }
    }
}

// A prompt chunk's worth of rows over a wide matrix (the 1.5B FFN value).
TEST_F(Bf16Dot, LargePrefillMatchesTheDefinition) {
  const int64_t rows = 70, cols = 7169, T = 131;
  const auto w = stored_weights(rows * cols, DType::BF16, 5);
  const Packed p = pack(w, DType::BF16, rows, cols);
  const auto x = random_vector(size_t(T * cols), 6);
  std::vector<float> y(size_t(T * rows)), def(y.size());
  set_default_thread_count(2);
  linear(x.data(), T, p.W, y.data());
  bf16dot::reference_linear(x.data(), T, p.W, def.data());
  const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], def[i], tol) << i;
}

TEST_F(Bf16Dot, SparseDecodeEqualsTheDenseProduct) {
  for (int64_t F : kOddSizes)
    for (int64_t C : {int64_t(1), int64_t(33), int64_t(130)}) {
      const auto w = stored_weights(C * F, DType::BF16, uint32_t(F + 7 * C));
      const Packed p = pack(w, DType::BF16, C, F);
      for (double zeros : {0.0, 0.5, 0.9, 1.0}) {
        auto h = random_vector(size_t(F), uint32_t(F * 3 + C));
        std::mt19937 rng{static_cast<uint32_t>(F)};
        std::uniform_real_distribution<double> u(0, 1);
        for (float& v : h) v = u(rng) < zeros ? 0.f : v * v;
        std::vector<float> dense(static_cast<size_t>(C)), sparse(static_cast<size_t>(C), -1.f);
        linear(h.data(), 1, p.W, dense.data());
        sparse_linear(h.data(), F, p.W, sparse.data());
        for (int64_t c = 0; c < C; ++c)
          ASSERT_EQ(sparse[size_t(c)] + 0.f, dense[size_t(c)] + 0.f) << C << "x" << F << " zeros=" << zeros;
      }
    }
}

// f16 weights that are all bf16 values become bf16 panels (the same numbers
// as the bf16 matrix, bit for bit, whichever kernel multiplies them: on
// every CPU); other f16 weights stay f16.
TEST(Bf16Panels, F16HoldingBf16ValuesIsPackedAsBf16) {
  const int64_t rows = 33, cols = 130, T = 17;
  if (!float_panels::runs()) GTEST_SKIP() << "no float panels on this target";
  const auto b = stored_weights(rows * cols, DType::BF16, 9);
  std::vector<uint16_t> h(size_t(rows * cols));
  for (size_t i = 0; i < h.size(); ++i) {
    uint16_t v;
    std::memcpy(&v, static_cast<const uint8_t*>(b.data()) + 2 * i, 2);
    h[i] = f32_to_f16(bf16_to_f32(v));
  }
  Matrix f16{h.data(), DType::F16, rows, cols};
  std::vector<uint8_t> f16_panels(linear_pack_bytes(f16));
  linear_pack(f16, f16_panels.data());
  EXPECT_TRUE(f16.packed_as_bf16);
  EXPECT_EQ(float_panels::panel_dtype(f16), DType::BF16);
  const Packed bf16 = pack(b, DType::BF16, rows, cols);
  EXPECT_FALSE(bf16.W.packed_as_bf16);
  const auto x = random_vector(size_t(T * cols), 3);
  for (int64_t t : {int64_t(1), T}) {
    std::vector<float> y16(size_t(t * rows)), yb(y16.size());
    linear(x.data(), t, f16, y16.data());
    linear(x.data(), t, bf16.W, yb.data());
    EXPECT_EQ(y16, yb) << "T=" << t;
  }

  // One value bf16 cannot hold, or an Inf: f16 panels.
  h[5] = f32_to_f16(1.f + 1.f / 1024);
  Matrix odd{h.data(), DType::F16, rows, cols};
  linear_pack(odd, f16_panels.data());
  EXPECT_FALSE(odd.packed_as_bf16);
  h[5] = f32_to_f16(std::numeric_limits<float>::infinity());
  linear_pack(odd, f16_panels.data());
  EXPECT_FALSE(odd.packed_as_bf16);
}

// f32 weights that are all bf16 values become bf16 panels of half the bytes
// and keep fp32 activations (also where AVX512-BF16 is on): every product,
// decode, prefill and sparse decode, equals that of f32 panels bit for bit.
// The reference: the same matrix with one value of its last row moved off
// bf16, which keeps f32 panels; rows are independent, so the other rows must
// agree exactly. On every CPU.
TEST(Bf16Panels, F32HoldingBf16ValuesIsPackedAsBf16WithFp32Activations) {
  const int64_t rows = 33, cols = 130, T = 17;  // 33 rows: a padded second panel
  if (!float_panels::runs()) GTEST_SKIP() << "no float panels on this target";
  const auto b = stored_weights(rows * cols, DType::BF16, 11);
  std::vector<float> f(size_t(rows * cols));
  convert_to_f32(b.data(), DType::BF16, rows * cols, f.data());
  Matrix held{f.data(), DType::F32, rows, cols};
  EXPECT_TRUE(float_panels::holds_bf16_values(held));
  const size_t panel_bytes = 2 * float_panels::kRows * size_t(cols);
  ASSERT_EQ(linear_pack_bytes(held), 2 * panel_bytes);  // two panels of bf16
  std::vector<uint8_t> held_panels(linear_pack_bytes(held));
  linear_pack(held, held_panels.data());
  EXPECT_TRUE(held.packed_as_bf16);
  EXPECT_EQ(float_panels::panel_dtype(held), DType::BF16);

  std::vector<float> g = f;
  g.back() += std::ldexp(std::fabs(g.back()) + 1.f, -20);  // not a bf16 value any more
  Matrix plain{g.data(), DType::F32, rows, cols};
  EXPECT_FALSE(float_panels::holds_bf16_values(plain));
  ASSERT_EQ(linear_pack_bytes(plain), 4 * panel_bytes);
  std::vector<uint8_t> plain_panels(linear_pack_bytes(plain));
  linear_pack(plain, plain_panels.data());
  EXPECT_FALSE(plain.packed_as_bf16);

  auto x = random_vector(size_t(T * cols), 5);
  auto same_but_last_row = [&](const std::vector<float>& a, const std::vector<float>& c, int64_t t,
                               const char* what) {
    for (int64_t i = 0; i < t; ++i)
      for (int64_t o = 0; o + 1 < rows; ++o)
        ASSERT_EQ(a[size_t(i * rows + o)], c[size_t(i * rows + o)]) << what << " T=" << t << " row " << o;
  };
  for (int64_t t : {int64_t(1), T}) {
    std::vector<float> yh(size_t(t * rows)), yp(yh.size());
    linear(x.data(), t, held, yh.data());
    linear(x.data(), t, plain, yp.data());
    same_but_last_row(yh, yp, t, "linear");
  }
  for (size_t i = 0; i < size_t(cols); i += 3) x[i] = 0;  // a third of the columns skipped
  std::vector<float> sh(static_cast<size_t>(rows)), sp(sh.size());
  float_panels::sparse_linear(x.data(), held, sh.data());
  float_panels::sparse_linear(x.data(), plain, sp.data());
  same_but_last_row(sh, sp, 1, "sparse_linear");
  // f16/bf16 matrices and f32 ones with other values are not "held".
  EXPECT_FALSE(float_panels::holds_bf16_values(Matrix{b.data(), DType::BF16, rows, cols}));
}

// Turned off, bf16 panels take the Highway kernels with fp32 activations.
TEST_F(Bf16Dot, OffKeepsFp32Activations) {
  const int64_t rows = 40, cols = 300, T = 20;
  const auto w = stored_weights(rows * cols, DType::BF16, 4);
  const Packed p = pack(w, DType::BF16, rows, cols);
  const auto x = random_vector(size_t(T * cols), 8);
  std::vector<float> on(size_t(T * rows)), off(on.size()), ref(on.size());
  linear(x.data(), T, p.W, on.data());
  bf16dot::set_enabled(false);
  EXPECT_FALSE(bf16dot::enabled());
  linear(x.data(), T, p.W, off.data());
  reference::linear(x.data(), T, p.W, ref.data());
  const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
  double worst_on = 0;
  for (size_t i = 0; i < on.size(); ++i) {
    ASSERT_NEAR(off[i], ref[i], tol) << i;
    worst_on = std::max(worst_on, std::fabs(double(on[i]) - ref[i]));
  }
  EXPECT_GT(worst_on, tol);  // the rounding of the activations shows
}

}  // namespace
}  // namespace aviary::ops
