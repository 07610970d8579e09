// Activation quantization and the integer dot products of Q8_0 / Q4_0 weights
// (ops/quant_dot.h): known values, and the error the activation rounding adds
// against the fp32-activation product. (Every SIMD variant against the
// reference: tests/ops/linear_simd_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/linear.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "ops/reference.h"
#include "simd_test_util.h"
#include "util/error.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

TEST(QuantDot, ActivationsOfAKnownBlock) {
  std::vector<float> x(32, 0.f);
  x[0] = 127.f;   // the largest magnitude: scale 1
  x[1] = -3.4f;   // rounds to -3
  x[2] = 2.5f;    // a tie: to even, 2
  x[3] = -0.5f;   // a tie: to even, 0
  x[31] = 64.6f;  // 65
  std::vector<int16_t> q(32);
  float d = 0;
  quantize_activations(x.data(), 1, 32, q.data(), &d);
  EXPECT_EQ(d, 1.f);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -3);
  EXPECT_EQ(q[2], 2);
  EXPECT_EQ(q[3], 0);
  EXPECT_EQ(q[31], 65);
  EXPECT_EQ(q[4], 0);
}

TEST(QuantDot, ZeroBlockAndScaleRoundedToFp16) {
  std::vector<float> x(64, 0.f);
  x[32] = -1.f;  // second block: scale 1/127 as the nearest fp16
  std::vector<int16_t> q(64, 99);
  float d[2] = {-1, -1};
  quantize_activations(x.data(), 2, 32, q.data(), d);
  EXPECT_EQ(d[0], 0.f);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[size_t(j)], 0);
  EXPECT_EQ(d[1], f16_to_f32(f32_to_f16(1.f / 127.f)));
  EXPECT_EQ(q[32], -127);
}

TEST(QuantDot, ReferenceRefusesOtherTypes) {
  const std::vector<float> w(32, 1.f), x(32, 1.f);
  std::vector<float> y(1);
  EXPECT_THROW(reference::linear_q8(x.data(), 1, Matrix{w.data(), DType::F32, 1, 32}, y.data()), Error);
}

// Hand-made Q8_0 weights and activations whose product is exact: the integer
// path must give it exactly.
TEST(QuantDot, ExactProductOfSmallIntegers) {
  std::vector<float> wv(64), xv(64);
  for (int j = 0; j < 64; ++j) {
    wv[size_t(j)] = float((j % 7) - 3);
    xv[size_t(j)] = float((j % 5) - 2);
  }
  wv[0] = 127.f;  // scales exactly 1
  wv[32] = 127.f;
  xv[0] = 127.f;
  xv[32] = -127.f;
  std::vector<uint8_t> w(dtype_bytes(DType::Q8_0, 64));
  quantize_row(DType::Q8_0, wv.data(), 64, w.data());
  float expect = 0;
  for (int j = 0; j < 64; ++j) expect += wv[size_t(j)] * xv[size_t(j)];
  float y = 0;
  linear(xv.data(), 1, Matrix{w.data(), DType::Q8_0, 1, 64}, &y);
  EXPECT_EQ(y, expect);
  reference::linear_q8(xv.data(), 1, Matrix{w.data(), DType::Q8_0, 1, 64}, &y);
  EXPECT_EQ(y, expect);
}

// The activation rounding adds a relative error of about 1/254 per block, of
// the order of the weights' own Q8_0 rounding: bound it against the product
// with fp32 activations.
TEST(QuantDot, CloseToTheFp32ActivationProduct) {
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    const int64_t rows = 64, cols = 1024;
    const auto v = random_vector(size_t(rows * cols), 5);
    std::vector<uint8_t> w(dtype_bytes(t, rows * cols));
    quantize_row(t, v.data(), rows * cols, w.data());
    const Matrix W{w.data(), t, rows, cols};
    const auto x = random_vector(size_t(cols), 6);
    std::vector<float> y(static_cast<size_t>(rows)), ref(static_cast<size_t>(rows));
    linear(x.data(), 1, W, y.data());
    reference::linear(x.data(), 1, W, ref.data());
    double err = 0, norm = 0;
    for (int64_t o = 0; o < rows; ++o) {
      err += double(y[size_t(o)] - ref[size_t(o)]) * (y[size_t(o)] - ref[size_t(o)]);
      norm += double(ref[size_t(o)]) * ref[size_t(o)];
    }
    EXPECT_LT(std::sqrt(err / norm), 0.01) << dtype_name(t);
  }
}

}  // namespace
}  // namespace aviary::ops
