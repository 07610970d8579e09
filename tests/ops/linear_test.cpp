// Matrix products against a plain double-precision reference, for every
// weight type and many shapes (odd sizes included).
#include <gtest/gtest.h>

#include <span>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "common/fp32_activations.h"
#include "ops/linear.h"
#include "ops/quant.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<double> values;  // what the stored elements decode to
};

Weights make_weights(int64_t n, DType t, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  Weights w;
  if (dtype_is_quantized(t)) {  // whole blocks of N(0,1) values, as quantize_row stores them
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    w.bytes.resize(dtype_bytes(t, n));
    quantize_row(t, v.data(), n, w.bytes.data());
    std::vector<float> back(v.size());
    dequantize_row(t, w.bytes.data(), n, back.data());
    w.values.assign(back.begin(), back.end());
    return w;
  }
  w.bytes.resize(size_t(n) * dtype_size(t));
  for (int64_t i = 0; i < n; ++i) {
    const float v = d(rng);
    if (t == DType::F32) reinterpret_cast<float*>(w.bytes.data())[i] = v;
    if (t == DType::F16) reinterpret_cast<uint16_t*>(w.bytes.data())[i] = f32_to_f16(v);
    if (t == DType::BF16) reinterpret_cast<uint16_t*>(w.bytes.data())[i] = f32_to_bf16(v);
    w.values.push_back(load_as_f32(w.bytes.data(), t, size_t(i)));
  }
  return w;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// |error| allowed for a sum of n products of N(0,1) values, in fp32.
double tolerance(int64_t n) { return 1e-5 * double(n); }

using Shape = std::tuple<DType, int64_t, int64_t, int64_t>;  // dtype, rows, cols, T

class LinearTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LinearTest, OutInMatchesReference) {
  const auto [t, rows, cols, T] = GetParam();
  const Weights w = make_weights(rows * cols, t, 7);
  const auto x = random_vector(T * cols, 11);
  std::vector<float> y(size_t(T * rows));
  linear(x.data(), T, Matrix{w.bytes.data(), t, rows, cols}, y.data());
  for (int64_t i = 0; i < T; ++i)
    for (int64_t o = 0; o < rows; ++o) {
      double ref = 0;
      for (int64_t c = 0; c < cols; ++c) ref += w.values[size_t(o * cols + c)] * x[size_t(i * cols + c)];
      ASSERT_NEAR(y[size_t(i * rows + o)], ref, tolerance(cols)) << "t=" << i << " o=" << o;
    }
}

TEST_P(LinearTest, InOutMatchesReference) {
  const auto [t, rows, cols, T] = GetParam();
  const Weights w = make_weights(rows * cols, t, 3);
  const auto x = random_vector(T * rows, 5);
  std::vector<float> y(size_t(T * cols));
  linear_in_out(x.data(), T, Matrix{w.bytes.data(), t, rows, cols}, y.data());
  for (int64_t i = 0; i < T; ++i)
    for (int64_t o = 0; o < cols; ++o) {
      double ref = 0;
      for (int64_t r = 0; r < rows; ++r) ref += x[size_t(i * rows + r)] * w.values[size_t(r * cols + o)];
      ASSERT_NEAR(y[size_t(i * cols + o)], ref, tolerance(rows)) << "t=" << i << " o=" << o;
    }
}

TEST_P(LinearTest, EachRowEqualsItsOwnMatrixVectorProduct) {
  // Sequence mode must equal token-by-token mode bit for bit.
  const auto [t, rows, cols, T] = GetParam();
  const Weights w = make_weights(rows * cols, t, 9);
  const Matrix W{w.bytes.data(), t, rows, cols};
  const auto x = random_vector(T * cols, 13);
  std::vector<float> all(static_cast<size_t>(T * rows)), one(static_cast<size_t>(rows));
  linear(x.data(), T, W, all.data());
  for (int64_t i = 0; i < T; ++i) {
    linear(x.data() + i * cols, 1, W, one.data());
    for (int64_t o = 0; o < rows; ++o) ASSERT_EQ(all[size_t(i * rows + o)], one[size_t(o)]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearTest,
    ::testing::Combine(::testing::Values(DType::F32, DType::F16, DType::BF16),
                       ::testing::Values(1, 3, 8, 17, 64),
                       ::testing::Values(1, 7, 16, 33, 130),
                       ::testing::Values(1, 2, 5)));

struct ManyShape { int64_t out, in, T; DType t; };

// Several products in one hand-out (linear_many) give, bit for bit, what each
// gives alone, for any thread count: the LoRA factors of decode (T = 1) and
// of prefill (rows in blocks of 64, so T = 70 and 131 split inside a job),
// from float panels where this CPU packs them, and from matrices as stored.
void expect_many_equals_alone(std::span<const ManyShape> shapes, bool pack) {
  const int before = default_thread_count();
  std::vector<Weights> w;
  std::vector<std::vector<uint8_t>> panels;
  std::vector<Matrix> m;
  std::vector<std::vector<float>> x;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const ManyShape& s = shapes[i];
    w.push_back(make_weights(s.out * s.in, s.t, uint32_t(i + 1)));
    x.push_back(random_vector(s.T * s.in, uint32_t(i + 100)));
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    m.push_back(Matrix{w[i].bytes.data(), shapes[i].t, shapes[i].out, shapes[i].in});
    if (!pack || linear_pack_bytes(m.back()) == 0) continue;
    panels.emplace_back(linear_pack_bytes(m.back()));
    linear_pack(m.back(), panels.back().data());
    m.back().packed = panels.back().data();
  }
  for (int threads : {1, 2, 3}) {
    set_default_thread_count(threads);
    std::vector<std::vector<float>> alone, together;
    std::vector<LinearJob> jobs;
    for (size_t i = 0; i < shapes.size(); ++i) {
      alone.emplace_back(size_t(shapes[i].T * shapes[i].out));
      together.emplace_back(size_t(shapes[i].T * shapes[i].out), -1.f);
      linear(x[i].data(), shapes[i].T, m[i], alone.back().data());
    }
    for (size_t i = 0; i < shapes.size(); ++i) jobs.push_back({x[i].data(), shapes[i].T, &m[i], together[i].data()});
    linear_many(jobs);
    for (size_t i = 0; i < shapes.size(); ++i)
      EXPECT_EQ(together[i], alone[i]) << "job " << i << ", " << threads << " threads";
  }
  set_default_thread_count(before);
}

TEST(LinearMany, DecodeJobsEqualTheProductsOneByOne) {
  const ManyShape shapes[] = {{64, 768, 1, DType::F32}, {128, 768, 1, DType::F32}, {768, 64, 1, DType::F16},
                              {200, 33, 1, DType::BF16}, {32, 768, 1, DType::F32}, {5, 3, 1, DType::F32}};
  for (bool pack : {true, false}) expect_many_equals_alone(shapes, pack);
}

// Decode: r, k, v in Q8_0/Q4_0 (VNNI panels where the CPU has them) fused
// with float LoRA factors in one hand-off.
TEST(LinearMany, QuantizedAndFloatDecodeJobsEqualTheProductsOneByOne) {
  const ManyShape shapes[] = {{256, 256, 1, DType::Q4_0}, {256, 256, 1, DType::Q8_0}, {100, 64, 1, DType::Q4_0},
                              {64, 256, 1, DType::F32},   {33, 256, 1, DType::F16},   {256, 32, 1, DType::F32}};
  for (bool pack : {true, false}) expect_many_equals_alone(shapes, pack);
  // Prefill: the quantized ones run alone, the float ones together.
  const ManyShape prefill[] = {{256, 256, 20, DType::Q4_0}, {64, 256, 20, DType::F32}, {256, 32, 20, DType::F32}};
  expect_many_equals_alone(prefill, true);
}

TEST(LinearMany, PrefillJobsEqualTheProductsOneByOne) {
  const ManyShape shapes[] = {{64, 256, 70, DType::F32}, {32, 256, 100, DType::F32}, {256, 64, 64, DType::F16},
                              {130, 33, 131, DType::BF16}, {17, 9, 3, DType::F32}, {300, 40, 30, DType::F32}};
  for (bool pack : {true, false}) expect_many_equals_alone(shapes, pack);
}

// linear_rows: output rows [r0, r1) only, the others untouched. On whole
// float panels (32-row multiples, or up to the last row) each row equals
// linear()'s bit for bit; elsewhere (rows inside a panel, matrices as stored,
// quantized ones) it is the rows' own product, within the SIMD tolerance
// (checked with fp32 activations: bf16 panels may round them to bf16, the
// rows' own product does not).
void expect_rows_equal_the_whole_product(bool fp32_activations) {
  for (DType t : {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0})
    for (bool pack : {true, false}) {
      const int64_t out = 100, in = 64, T = 3;  // 100 rows: a partial last panel
      const Weights w = make_weights(out * in, t, 5);
      Matrix W{w.bytes.data(), t, out, in};
      std::vector<uint8_t> panels;
      if (pack && linear_pack_bytes(W) > 0) {
        panels.resize(linear_pack_bytes(W));
        linear_pack(W, panels.data());
      }
      const auto x = random_vector(T * in, 6);
      std::vector<float> whole(size_t(T * out));
      linear(x.data(), T, W, whole.data());
      const bool float_panels = W.packed && !dtype_is_quantized(t);
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 32}, {32, 64}, {64, 100}, {0, 100}, {5, 37}, {99, 100}}) {
        std::vector<float> y(whole.size(), -7.f);
        linear_rows(x.data(), T, W, r0, r1, y.data());
        const bool exact = float_panels && r0 % 32 == 0 && (r1 % 32 == 0 || r1 == out);
        for (int64_t i = 0; i < T; ++i)
          for (int64_t o = 0; o < out; ++o) {
            const float got = y[size_t(i * out + o)], want = whole[size_t(i * out + o)];
            if (o < r0 || o >= r1) {
              ASSERT_EQ(got, -7.f) << "row " << o << " outside [" << r0 << ", " << r1 << ")";
            } else if (exact) {
              ASSERT_EQ(got, want) << dtype_name(t) << " row " << o;
            } else if (fp32_activations) {
              ASSERT_NEAR(got, want, 1e-4f * (1.f + std::fabs(want))) << dtype_name(t) << " row " << o;
            }
          }
      }
    }
}

TEST(LinearRows, RowsEqualTheWholeProduct) {
  expect_rows_equal_the_whole_product(false);
  const test::Fp32Activations fp32;
  expect_rows_equal_the_whole_product(true);
}

TEST(Dot, MatchesReferenceForAllLengthsUpTo70) {
  for (int64_t n = 0; n <= 70; ++n) {
    const auto a = random_vector(n, uint32_t(n)), b = random_vector(n, uint32_t(n + 100));
    double ref = 0;
    for (int64_t i = 0; i < n; ++i) ref += double(a[size_t(i)]) * b[size_t(i)];
    EXPECT_NEAR(dot(a.data(), b.data(), n), ref, 1e-5 * double(n + 1)) << n;
  }
}

TEST(ConvertToF32, AllTypes) {
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const Weights w = make_weights(37, t, 1);
    std::vector<float> out(37);
    convert_to_f32(w.bytes.data(), t, 37, out.data());
    for (size_t i = 0; i < 37; ++i) EXPECT_EQ(out[i], float(w.values[i]));
  }
}

}  // namespace
}  // namespace aviary::ops
