// Every SIMD variant of the matrix products and vector helpers against the
// plain scalar reference, for every weight type and many shapes (odd ones
// included), single- and multi-threaded.
#include <gtest/gtest.h>

#include <cstring>
#include <tuple>

#include "ops/linear.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "ops/quant_dot_vnni.h"
#include "ops/reference.h"
#include "simd_test_util.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

using Param = std::tuple<std::string, DType>;  // SIMD variant, weight type

class SimdLinear : public ForcedSimdTest<Param> {
 protected:
  DType dtype() const { return std::get<1>(GetParam()); }
};

constexpr int64_t kTs[] = {1, 2, 3, 5, 9};

TEST_P(SimdLinear, MatchesReference) {
  ASSERT_EQ(simd_target(), std::get<0>(GetParam()));
  for (int64_t rows : kOddSizes)
    for (int64_t cols : kOddSizes) {
      const auto w = stored_weights(rows * cols, dtype(), uint32_t(rows * 7 + cols));
      // The same weights 2 bytes into their buffer: unaligned rows.
      const auto wu = stored_weights(rows * cols, dtype(), uint32_t(rows * 7 + cols), 2);
      for (int64_t T : kTs) {
        if (rows * cols * T > 2'000'000) continue;
        const auto x = random_vector(size_t(T * cols), uint32_t(T + cols));
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

// Float weights in panels (linear_pack, ops/float_panels.h) on every variant:
// against the reference, row t of a batch equal to row t alone (decode tiles
// of several panels, prefill tiles of interleaved rows, leftovers), for 1-3
// threads; partial last panels included (odd row counts).
TEST_P(SimdLinear, PanelsMatchReference) {
  const int threads_before = default_thread_count();
  for (int64_t rows : kOddSizes)
    for (int64_t cols : kOddSizes) {
      const auto w = stored_weights(rows * cols, dtype(), uint32_t(rows * 11 + cols));
      Matrix W{w.data(), dtype(), rows, cols};
      const size_t bytes = linear_pack_bytes(W);
      if (bytes == 0) continue;  // a target that multiplies W as stored
      ASSERT_EQ(bytes, size_t((rows + 31) / 32 * 32 * cols) * dtype_size(dtype()));
      std::vector<uint8_t> panels(bytes);
      linear_pack(W, panels.data());
      W.packed = panels.data();
      for (int64_t T : {1, 2, 13, 30}) {
        if (rows * cols * T > 2'000'000) continue;
        const auto x = random_vector(size_t(T * cols), uint32_t(T * 7 + cols));
        const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
        std::vector<float> ref(size_t(T * rows)), one(static_cast<size_t>(rows));
        reference::linear(x.data(), T, W, ref.data());
        for (int threads : {1, 2, 3}) {
          set_default_thread_count(threads);
          std::vector<float> y(ref.size());
          linear(x.data(), T, W, y.data());
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], ref[i], tol) << rows << "x" << cols << " T=" << T << " i=" << i;
          for (int64_t r = 0; r < T; ++r) {
            linear(x.data() + r * cols, 1, W, one.data());
            for (int64_t o = 0; o < rows; ++o)
              ASSERT_EQ(one[size_t(o)], y[size_t(r * rows + o)]) << rows << "x" << cols << " T=" << T << " row " << r;
          }
        }
      }
    }
  set_default_thread_count(threads_before);
}

// Decode runs rows of up to 4096 inputs one panel at a time and longer ones
// in tiles of several panels (float_panels.cpp): both sides of the switch,
// against the reference and bit for bit against the rows of a batch.
TEST_P(SimdLinear, PanelsOfLongRowsMatchReference) {
  for (int64_t rows : {70, 130})
    for (int64_t cols : {4096, 4097, 4500}) {
      const auto w = stored_weights(rows * cols, dtype(), uint32_t(rows * 3 + cols));
      Matrix W{w.data(), dtype(), rows, cols};
      const size_t bytes = linear_pack_bytes(W);
      if (bytes == 0) continue;  // a target that multiplies W as stored
      std::vector<uint8_t> panels(bytes);
      linear_pack(W, panels.data());
      W.packed = panels.data();
      const int64_t T = 2;
      const auto x = random_vector(size_t(T * cols), uint32_t(cols + 1));
      const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
      std::vector<float> ref(size_t(T * rows)), y(ref.size()), one(static_cast<size_t>(rows));
      reference::linear(x.data(), T, W, ref.data());
      linear(x.data(), T, W, y.data());
      for (int64_t r = 0; r < T; ++r) {
        linear(x.data() + r * cols, 1, W, one.data());
        for (int64_t o = 0; o < rows; ++o) {
          ASSERT_NEAR(one[size_t(o)], ref[size_t(r * rows + o)], tol) << rows << "x" << cols << " row " << r;
          ASSERT_EQ(one[size_t(o)], y[size_t(r * rows + o)]) << rows << "x" << cols << " row " << r;
        }
      }
    }
}

TEST_P(SimdLinear, InOutMatchesReference) {
  for (int64_t rows : kOddSizes)
    for (int64_t cols : kOddSizes) {
      const auto w = stored_weights(rows * cols, dtype(), uint32_t(rows + cols * 5));
      for (int64_t T : kTs) {
        if (rows * cols * T > 2'000'000) continue;
        const auto x = random_vector(size_t(T * rows), uint32_t(T * 3 + rows));
        const double tol = sum_tolerance(rows, double(max_abs(x)) * w.max_abs);
        std::vector<float> y(size_t(T * cols)), ref(y.size());
        linear_in_out(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, y.data());
        reference::linear_in_out(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, ref.data());
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], ref[i], tol) << rows << "x" << cols << " T=" << T << " i=" << i;
      }
    }
}

// Sequence mode must equal token-by-token mode bit for bit, whatever the
// thread count: each output sums in one order for every T and every split.
TEST_P(SimdLinear, RowsOfABatchEqualSingleRowsForAnyThreadCount) {
  const int before = default_thread_count();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{130, 1000}, {1000, 64}, {33, 17}, {4099, 33}}) {
    const auto w = stored_weights(rows * cols, dtype(), 17);
    const Matrix W{w.data(), dtype(), rows, cols};
    const Matrix Wt{w.data(), dtype(), cols, rows};  // the same bytes read as [in, out]
    const int64_t T = 7;
    const auto x = random_vector(size_t(T * cols), 19);
    std::vector<float> first, first_t;
    for (int threads : {1, 2, 3}) {
      set_default_thread_count(threads);
      std::vector<float> all(static_cast<size_t>(T * rows)), one(static_cast<size_t>(rows));
      std::vector<float> all_t(all.size()), one_t(one.size());
      linear(x.data(), T, W, all.data());
      linear_in_out(x.data(), T, Wt, all_t.data());
      for (int64_t t = 0; t < T; ++t) {
        linear(x.data() + t * cols, 1, W, one.data());
        linear_in_out(x.data() + t * cols, 1, Wt, one_t.data());
        for (int64_t o = 0; o < rows; ++o) {
          ASSERT_EQ(all[size_t(t * rows + o)], one[size_t(o)]) << threads << " t=" << t << " o=" << o;
          ASSERT_EQ(all_t[size_t(t * rows + o)], one_t[size_t(o)]) << threads << " t=" << t << " o=" << o;
        }
      }
      if (first.empty()) {
        first = all;
        first_t = all_t;
      }
      EXPECT_EQ(all, first) << threads << " threads";
      EXPECT_EQ(all_t, first_t) << threads << " threads";
    }
  }
  set_default_thread_count(before);
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param) + "_" + std::string(dtype_name(std::get<1>(info.param)));
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdLinear,
                         ::testing::Combine(::testing::ValuesIn(simd_variants()),
                                            ::testing::Values(DType::F32, DType::F16, DType::BF16)),
                         param_name);

// ---- Block-quantized weights (Q8_0, Q4_0, Q4_K) ------------------------------
//
// The SIMD kernels dequantise to exactly the values dequantize_row() gives (Q4_K)
// or multiply exactly in integers after quantizing the activations as their
// reference does (Q8_0, Q4_0: ops/quant_dot.h), so they differ from their
// reference only in summation order: the tolerance is sum_tolerance(cols,
// max|x| * max|w|), 1e-6 * sqrt(cols) * max product.

// Random N(0,1) rows quantized as `t`, `offset` bytes into the buffer, and
// the largest magnitude they dequantize to.
StoredWeights quantized_weights(int64_t rows, int64_t cols, DType t, uint32_t seed, size_t offset = 0) {
  const auto v = random_vector(size_t(rows * cols), seed);
  StoredWeights w;
  w.offset = offset;
  w.bytes.resize(offset + dtype_bytes(t, rows * cols));
  quantize_row(t, v.data(), rows * cols, w.bytes.data() + offset);
  std::vector<float> back(v.size());
  dequantize_row(t, w.data(), rows * cols, back.data());
  w.max_abs = max_abs(back);
  return w;
}

std::vector<int64_t> quant_cols(DType t) {
  if (t == DType::Q4_K) return {256, 512, 768, 4096};
  return {32, 64, 96, 256, 512, 4096 + 32};
}

constexpr int64_t kQuantRowsAndTs[] = {1, 2, 3, 7, 33, 128};

class SimdQuantLinear : public SimdLinear {};

TEST_P(SimdQuantLinear, MatchesReference) {
  ASSERT_EQ(simd_target(), std::get<0>(GetParam()));
  for (int64_t rows : kQuantRowsAndTs)
    for (int64_t cols : quant_cols(dtype())) {
      const auto w = quantized_weights(rows, cols, dtype(), uint32_t(rows * 7 + cols));
      // The same bytes 1 byte into their buffer: unaligned blocks.
      const auto wu = quantized_weights(rows, cols, dtype(), uint32_t(rows * 7 + cols), 1);
      for (int64_t T : kQuantRowsAndTs) {
        if (T > 2 && rows * cols * T > 3'000'000) continue;
        // A seed no weight row shares: x equal to a weight row would make a sum
        // of squares, whose rounding grows faster than the tolerance assumes.
        const auto x = random_vector(size_t(T * cols), uint32_t(1'000'003 + T * 8191 + cols));
        const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
        std::vector<float> y(size_t(T * rows)), yu(y.size()), ref(y.size());
        linear(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, y.data());
        linear(x.data(), T, Matrix{wu.data(), dtype(), rows, cols}, yu.data());
        if (uses_q8_activations(dtype()))
          reference::linear_q8(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, ref.data());
        else
          reference::linear(x.data(), T, Matrix{w.data(), dtype(), rows, cols}, ref.data());
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], ref[i], tol) << rows << "x" << cols << " T=" << T << " i=" << i;
          ASSERT_EQ(yu[i], y[i]) << "unaligned " << rows << "x" << cols << " T=" << T << " i=" << i;
        }
      }
    }
}

// Matrices not in panels take the Highway kernels whether or not the VNNI
// path is enabled; both settings match the reference (the panels: below).
TEST(QuantDotVnni, OnAndOffMatchTheReference) {
  const bool before = vnni::enabled();
  for (bool on : {true, false}) {
    vnni::set_enabled(on);
    for (DType t : {DType::Q8_0, DType::Q4_0})
      for (int64_t rows : {1, 7, 9, 33})
        for (int64_t cols : {32, 96, 256, 4096 + 32})
          for (int64_t T : {1, 3, 5}) {
            const auto w = quantized_weights(rows, cols, t, uint32_t(rows * 3 + cols));
            const auto x = random_vector(size_t(T * cols), uint32_t(2'000'003 + T * 131 + cols));
            const Matrix W{w.data(), t, rows, cols};
            std::vector<float> y(size_t(T * rows)), ref(y.size()), one(static_cast<size_t>(rows));
            linear(x.data(), T, W, y.data());
            reference::linear_q8(x.data(), T, W, ref.data());
            const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(y[i], ref[i], tol) << on << " " << dtype_name(t) << " " << rows << "x" << cols << " T=" << T;
            for (int64_t r = 0; r < T; ++r) {
              linear(x.data() + r * cols, 1, W, one.data());
              for (int64_t o = 0; o < rows; ++o) ASSERT_EQ(one[size_t(o)], y[size_t(r * rows + o)]) << on << " row " << r;
            }
          }
  }
  vnni::set_enabled(before);
}

// The panel kernel's activations, made in one pass, are the reference
// quantization's values (ties, a zero block and a huge value included) as
// bytes, its scales, and the offset corrections, with the VNNI path on and off.
TEST(QuantDotVnni, ActivationsForPanelsAreTheReferenceQuantization) {
  const bool before = vnni::enabled();
  for (bool on : {true, false}) {
    vnni::set_enabled(on && before);
    for (DType t : {DType::Q8_0, DType::Q4_0})
      for (int64_t blocks : {1, 2, 3, 24, 97})
        for (int64_t T : {1, 3}) {
          const int64_t n = T * blocks * 32;
          auto x = random_vector(size_t(n), uint32_t(blocks * 7 + T), 0.f, 3.f);
          for (size_t j = 0; j < 32; ++j) x[j] = 0.f;
          if (n > 64) x[40] = 1e30f;
          if (n > 96) for (size_t j = 64; j < 96; ++j) x[j] = float(int(j) - 80) * 0.5f;
          std::vector<int16_t> q(static_cast<size_t>(n));
          std::vector<float> d(size_t(n / 32)), xd(d.size());
          reference::quantize_activations(x.data(), T, blocks * 32, q.data(), d.data());
          std::vector<int8_t> x8(static_cast<size_t>(n));
          std::vector<int32_t> corr(d.size());
          vnni::quantize_for_panels(x.data(), size_t(T), size_t(blocks * 32), t, x8.data(), corr.data(), xd.data());
          const int32_t offset = t == DType::Q8_0 ? 128 : 8;
          for (int64_t b = 0; b < n / 32; ++b) {
            int32_t sum = 0;
            for (int64_t j = b * 32; j < b * 32 + 32; ++j) {
              ASSERT_EQ(int(x8[size_t(j)]), int(q[size_t(j)])) << on << " " << dtype_name(t) << " value " << j;
              sum += q[size_t(j)];
            }
            EXPECT_EQ(corr[size_t(b)], -offset * sum) << on << " block " << b;
            EXPECT_EQ(xd[size_t(b)], d[size_t(b)]) << on << " block " << b;
          }
        }
  }
  vnni::set_enabled(before);
}

// Decode's activation buffers come from a ring: four calls in a row get
// four different ones (each stays valid until then), the fifth the first's.
TEST(QuantDotVnni, DecodeActivationBuffersRotateOverFour) {
  std::vector<int8_t*> seen;
  for (int i = 0; i < 5; ++i) seen.push_back(vnni::panel_activations(64, true).x8);
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j) EXPECT_NE(seen[size_t(i)], seen[size_t(j)]) << i << " " << j;
  EXPECT_EQ(seen[4], seen[0]);
  const vnni::PanelActivations big = vnni::panel_activations(1 << 16, false);
  EXPECT_EQ(big.x8, vnni::panel_activations(1 << 16, false).x8);  // prefill keeps one
}

// Q8_0 / Q4_0 weights in VNNI panels (linear_pack): against the reference on
// shapes with partial panels, row t of a batch equal to row t alone for any T
// (tiles of 8, leftovers, L2 chunks) and thread count; where the CPU has no
// panel kernel, linear_pack_bytes is 0 and linear_pack refuses.
TEST(QuantDotVnni, PanelsMatchTheReference) {
  const int threads_before = default_thread_count();
  for (DType t : {DType::Q8_0, DType::Q4_0})
    for (int64_t rows : {1, 7, 16, 17, 33, 100})
      for (int64_t cols : {32, 96, 256, 4096 + 32}) {
        const auto w = quantized_weights(rows, cols, t, uint32_t(rows * 5 + cols));
        Matrix W{w.data(), t, rows, cols};
        const size_t bytes = linear_pack_bytes(W);
        if (bytes == 0) {
          std::vector<uint8_t> dst(16);
          EXPECT_THROW(linear_pack(W, dst.data()), Error);
          continue;
        }
        // The file's bytes in whole panels, blocks in pairs (an odd last one padded).
        const int64_t paired_cols = (cols / 32 + 1) / 2 * 64;
        EXPECT_EQ(bytes, size_t((rows + 15) / 16 * 16) * dtype_bytes(t, paired_cols));
        std::vector<uint8_t> panels(bytes);
        linear_pack(W, panels.data());
        W.packed = panels.data();
        for (int64_t T : {1, 2, 8, 9, 17, 70}) {
          const auto x = random_vector(size_t(T * cols), uint32_t(3'000'017 + T * 131 + cols));
          std::vector<float> ref(size_t(T * rows)), one(static_cast<size_t>(rows));
          reference::linear_q8(x.data(), T, W, ref.data());
          const double tol = sum_tolerance(cols, double(max_abs(x)) * w.max_abs);
          for (int threads : {1, 2, 3}) {
            set_default_thread_count(threads);
            std::vector<float> y(ref.size());
            linear(x.data(), T, W, y.data());
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(y[i], ref[i], tol) << dtype_name(t) << " " << rows << "x" << cols << " T=" << T << " i=" << i;
            for (int64_t r = 0; r < T; ++r) {
              linear(x.data() + r * cols, 1, W, one.data());
              for (int64_t o = 0; o < rows; ++o)
                ASSERT_EQ(one[size_t(o)], y[size_t(r * rows + o)]) << dtype_name(t) << " T=" << T << " row " << r;
            }
          }
        }
      }
  set_default_thread_count(threads_before);
}

// Row t of a T-row product equals the product of row t alone, bit for bit,
// for any thread count; T = 70 spans two chunks of kept accumulators.
TEST_P(SimdQuantLinear, RowsOfABatchEqualSingleRowsForAnyThreadCount) {
  const int before = default_thread_count();
  const int64_t wide = dtype() == DType::Q4_K ? 4096 : 4096 + 32;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{130, 1024}, {33, wide}, {1000, 256}}) {
    const auto w = quantized_weights(rows, cols, dtype(), 17);
    const Matrix W{w.data(), dtype(), rows, cols};
    for (int64_t T : {7, 70}) {
      const auto x = random_vector(size_t(T * cols), 19);
      std::vector<float> first;
      for (int threads : {1, 2, 3}) {
        set_default_thread_count(threads);
        std::vector<float> all(static_cast<size_t>(T * rows)), one(static_cast<size_t>(rows));
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

INSTANTIATE_TEST_SUITE_P(Variants, SimdQuantLinear,
                         ::testing::Combine(::testing::ValuesIn(simd_variants()),
                                            ::testing::Values(DType::Q8_0, DType::Q4_0, DType::Q4_K)),
                         param_name);

using SimdVector = ForcedSimdTest<std::string>;

// Activation quantization is plain IEEE arithmetic: every variant gives the
// reference's bytes exactly (scale ties, zero blocks and huge values included).
TEST_P(SimdVector, ActivationQuantizationEqualsReference) {
  for (int64_t blocks : {1, 2, 3, 24, 97}) {
    auto x = random_vector(size_t(blocks * 32), uint32_t(blocks), 0.f, 3.f);
    for (size_t j = 0; j < 32; ++j) x[j] = 0.f;                   // a zero block
    if (blocks > 1) x[40] = 1e30f;                                // a huge value
    if (blocks > 2) for (size_t j = 64; j < 96; ++j) x[j] = float(int(j) - 80) * 0.5f;  // ties
    std::vector<int16_t> q(x.size()), qr(x.size());
    std::vector<float> d(static_cast<size_t>(blocks)), dr(static_cast<size_t>(blocks));
    quantize_activations(x.data(), 1, blocks * 32, q.data(), d.data());
    reference::quantize_activations(x.data(), 1, blocks * 32, qr.data(), dr.data());
    EXPECT_EQ(q, qr) << blocks;
    EXPECT_EQ(d, dr) << blocks;
  }
}

TEST_P(SimdVector, DotMatchesReference) {
  for (int64_t n = 0; n <= 1100; n += n < 70 ? 1 : 97) {
    const auto a = random_vector(size_t(n), uint32_t(n)), b = random_vector(size_t(n), uint32_t(n + 100));
    EXPECT_NEAR(dot(a.data(), b.data(), n), reference::dot(a.data(), b.data(), n),
                sum_tolerance(n, double(max_abs(a)) * max_abs(b)))
        << n;
  }
}

TEST_P(SimdVector, AxpyMatchesReference) {
  for (int64_t n = 0; n <= 1100; n += n < 70 ? 1 : 97) {
    const auto x = random_vector(size_t(n), uint32_t(n));
    auto y = random_vector(size_t(n) + 1, uint32_t(n + 7));  // one more: must stay untouched
    auto ref = y;
    axpy(0.75f, x.data(), y.data(), n);
    reference::axpy(0.75f, x.data(), ref.data(), n);
    for (size_t i = 0; i < size_t(n); ++i) ASSERT_NEAR(y[i], ref[i], 1e-6 * (1 + std::fabs(ref[i]))) << n;
    EXPECT_EQ(y[size_t(n)], ref[size_t(n)]);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdVector, ::testing::ValuesIn(simd_variants()));

TEST(Simd, EveryVariantCanBeForcedAndReported) {
  const std::vector<std::string> all = simd_targets();
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all.back(), "reference");
  const std::string best = all.front(), before = simd_target();
  for (const std::string& name : all) {
    set_simd_target(name);
    EXPECT_EQ(simd_target(), name);
  }
  set_simd_target("auto");
  EXPECT_EQ(simd_target(), best);
  EXPECT_THROW(set_simd_target("no-such-cpu"), Error);
  EXPECT_EQ(simd_target(), best);
  set_simd_target(before);
}

}  // namespace
}  // namespace aviary::ops
