// linear() with Q4_1, Q5_0, Q5_1, Q5_K and Q6_K weights on every Highway
// target: the row decoders of quant_simd-inl.h give exactly dequantize_row's
// values (checked through one-hot activations, whose products are exact), the
// products match the scalar reference within summation-order rounding over
// many shapes (odd row counts, T = 1, 3, 17), and row t of a T-row product
// equals the product of row t alone bit for bit.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "ops/linear.h"
#include "ops/matrix.h"
#include "ops/quant.h"
#include "ops/reference.h"
#include "simd_test_util.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

using test::max_abs;
using test::random_vector;
using test::simd_variants;
using test::sum_tolerance;

using Param = std::tuple<std::string, DType>;

class SimdQuantTypes : public test::ForcedSimdTest<Param> {
 protected:
  DType dtype() const { return std::get<1>(GetParam()); }
};

// Random N(0, 1) rows quantized as t, `offset` bytes into the buffer (for
// unaligned blocks); `decoded` is what dequantize_row gives for them.
struct QuantRows {
  std::vector<uint8_t> bytes;
  size_t offset = 0;
  std::vector<float> decoded;
  float max_abs = 0;
  const void* data() const { return bytes.data() + offset; }
};

QuantRows quant_rows(int64_t rows, int64_t cols, DType t, uint32_t seed, size_t offset = 0) {
  const auto v = random_vector(size_t(rows * cols), seed);
  QuantRows w;
  w.offset = offset;
  w.bytes.resize(offset + dtype_bytes(t, rows * cols));
  quantize_row(t, v.data(), rows * cols, w.bytes.data() + offset);
  w.decoded.resize(v.size());
  dequantize_row(t, w.data(), rows * cols, w.decoded.data());
  w.max_abs = max_abs(w.decoded);
  return w;
}

std::vector<int64_t> cols_of(DType t) {
  if (dtype_block_elems(t) == 256) return {256, 512, 768, 2048};
  return {32, 64, 96, 256, 544, 2048 + 32};
}

// Row o of y = x W^T with x the identity (T = cols) and with each one-hot
// row alone (T = 1) is column o of W: every product but one is w * 0, the
// remaining one w * 1, so the sums are exact and must equal the decoded weights.
TEST_P(SimdQuantTypes, DecodesExactlyWhatDequantizeRowGives) {
  ASSERT_EQ(simd_target(), std::get<0>(GetParam()));
  for (int64_t rows : {1, 5}) {
    const int64_t cols = dtype_block_elems(dtype()) * 2;
    const auto w = quant_rows(rows, cols, dtype(), uint32_t(rows + 3));
    const Matrix W{w.data(), dtype(), rows, cols};
    std::vector<float> eye(size_t(cols * cols), 0.f);
    for (int64_t i = 0; i < cols; ++i) eye[size_t(i * cols + i)] = 1.f;
    std::vector<float> y(size_t(cols * rows)), one(static_cast<size_t>(rows));
    linear(eye.data(), cols, W, y.data());
    for (int64_t i = 0; i < cols; ++i) {
      linear(eye.data() + i * cols, 1, W, one.data());
      for (int64_t o = 0; o < rows; ++o) {
        const float want = w.decoded[size_t(o * cols + i)];
        ASSERT_EQ(y[size_t(i * rows + o)], want) << "T=cols, row " << o << " col " << i;
        ASSERT_EQ(one[size_t(o)], want) << "T=1, row " << o << " col " << i;
      }
    }
  }
}

TEST_P(SimdQuantTypes, MatchesReference) {
  for (int64_t rows : {1, 2, 3, 7, 33, 129})
    for (int64_t cols : cols_of(dtype())) {
      const auto w = quant_rows(rows, cols, dtype(), uint32_t(rows * 7 + cols));
      const auto wu = quant_rows(rows, cols, dtype(), uint32_t(rows * 7 + cols), 1);
      for (int64_t T : {1, 3, 17}) {
        // A seed no weight row shares (x equal to a weight row would make a
        // sum of squares, whose rounding grows faster than the tolerance assumes).
        const auto x = random_vector(size_t(T * cols), uint32_t(1'000'003 + T * 8191 + cols));
        const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
        std::vector<float> y(size_t(T * rows)), yu(y.size()), ref(y.size());
        linear(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, y.data());
        linear(x.data(), T, Matrix{wu.data(), dtype(), rows, cols}, yu.data());
        reference::linear(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, ref.data());
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], ref[i], tol) << rows << "x" << cols << " T=" << T << " i=" << i;
          ASSERT_EQ(yu[i], y[i]) << "unaligned " << rows << "x" << cols << " T=" << T << " i=" << i;
        }
      }
    }
}

// T = 70 spans two chunks of kept accumulators; 1 and 3 threads split the rows differently.
TEST_P(SimdQuantTypes, RowsOfABatchEqualSingleRowsForAnyThreadCount) {
  const int before = default_thread_count();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{131, 512}, {33, 2048}}) {
    const auto w = quant_rows(rows, cols, dtype(), 17);
    const Matrix W{w.data(), dtype(), rows, cols};
    for (int64_t T : {3, 17, 70}) {
      const auto x = random_vector(size_t(T * cols), 19);
      std::vector<float> first;
      for (int threads : {1, 3}) {
        set_default_thread_count(threads);
        std::vector<float> all(size_t(T * rows)), one(static_cast<size_t>(rows));
        linear(x.data(), T, W, all.data());
        for (int64_t t = 0; t < T; ++t) {
          linear(x.data() + t * cols, 1, W, one.data());
          for (int64_t o = 0; o < rows; ++o)
            ASSERT_EQ(all[size_t(t * rows + o)], one[size_t(o)]) << threads << " T=" << T << " t=" << t << " o=" << o;
        }
        if (first.empty()) first = all;
        EXPECT_EQ(all, first) << threads << " threads";
      }
    }
  }
  set_default_thread_count(before);
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdQuantTypes,
                         ::testing::Combine(::testing::ValuesIn(simd_variants()),
                                            ::testing::Values(DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q5_K,
                                                              DType::Q6_K)),
                         param_name);

// The scalar reference (the "reference" target) decodes through
// dequantize_row too, so it agrees with the decoded weights exactly as well.
TEST(QuantTypesReference, LinearUsesDequantizedRows) {
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q5_K, DType::Q6_K}) {
    const int64_t rows = 3, cols = 512;
    const auto w = quant_rows(rows, cols, t, 23);
    std::vector<float> x(size_t(cols), 0.f), y(static_cast<size_t>(rows));
    x[100] = 1.f;
    reference::linear(x.data(), 1, Matrix{w.data(), t, rows, cols}, y.data());
    for (int64_t o = 0; o < rows; ++o) EXPECT_EQ(y[size_t(o)], w.decoded[size_t(o * cols + 100)]) << dtype_name(t);
  }
}

}  // namespace
}  // namespace aviary::ops
