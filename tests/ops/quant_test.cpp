// The GGML block formats (ops/quant.h): byte layouts derived by hand from the
// format, round-trip error bounds, and bad sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ops/linear.h"
#include "ops/matrix.h"
#include "ops/quant.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace aviary::ops {
namespace {

using test::dequantized;
using test::normal_row;
using test::quantized;

uint16_t u16_at(const std::vector<uint8_t>& b, size_t at) { return uint16_t(b[at] | (b[at + 1] << 8)); }

TEST(Quant, BlockSizesAreGgmls) {
  EXPECT_EQ(dtype_block_elems(DType::Q8_0), 32);
  EXPECT_EQ(dtype_block_bytes(DType::Q8_0), 34u);
  EXPECT_EQ(dtype_block_elems(DType::Q4_0), 32);
  EXPECT_EQ(dtype_block_bytes(DType::Q4_0), 18u);
  EXPECT_EQ(dtype_block_elems(DType::Q4_K), 256);
  EXPECT_EQ(dtype_block_bytes(DType::Q4_K), 144u);
  EXPECT_EQ(dtype_bytes(DType::Q4_K, 4096), 16u * 144);
}

TEST(Quant, ZerosQuantizeToZeroBytes) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const auto q = quantized(t, std::vector<float>(512, 0.f));
    // Q4_0 stores q = 8 for zero (nibbles 8, bytes 0x88) and d = 0 / -8 = -0
    // (fp16 0x8000), as ggml does.
    for (size_t i = 0; i < q.size(); ++i) {
      const size_t at = i % 18;
      const int want = t != DType::Q4_0 ? 0 : at >= 2 ? 0x88 : at == 1 ? 0x80 : 0;
      ASSERT_EQ(q[i], want) << dtype_name(t) << " byte " << i;
    }
    for (float v : dequantized(t, q, 512)) ASSERT_EQ(v, 0.f) << dtype_name(t);
  }
}

TEST(Quant, Q8_0KnownBlocks) {
  // All equal: d = 1/127, every q = 127.
  auto q = quantized(DType::Q8_0, std::vector<float>(32, 1.f));
  EXPECT_EQ(u16_at(q, 0), f32_to_f16(1.f / 127));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[size_t(2 + j)], 127);
  // Ramp -16..15: d = 16/127, q = round(x * 127/16), half away from zero.
  std::vector<float> ramp(32);
  for (int j = 0; j < 32; ++j) ramp[size_t(j)] = float(j - 16);
  q = quantized(DType::Q8_0, ramp);
  EXPECT_EQ(u16_at(q, 0), f32_to_f16(16.f / 127));
  const float id = 1.f / (16.f / 127);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(int8_t(q[size_t(2 + j)]), int(std::round(float(j - 16) * id))) << j;
  EXPECT_EQ(int8_t(q[2]), -127);
  const auto y = dequantized(DType::Q8_0, q, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[size_t(j)], float(int8_t(q[size_t(2 + j)])) * f16_to_f32(u16_at(q, 0)));
}

TEST(Quant, Q4_0KnownBlocks) {
  // All equal 1: d = 1/-8, q = int(-8 + 8.5) = 0, and back exactly 1.
  auto q = quantized(DType::Q4_0, std::vector<float>(32, 1.f));
  EXPECT_EQ(f16_to_f32(u16_at(q, 0)), -0.125f);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(2 + j)], 0x00);
  for (float v : dequantized(DType::Q4_0, q, 32)) EXPECT_EQ(v, 1.f);
  // Ramp -16..15: the largest magnitude is -16, so d = 2 and q = int(x/2 + 8.5)
  // = (j + 1) / 2, clamped to 15; value j in the low nibble of byte j < 16,
  // value j + 16 in the high nibble of byte j.
  std::vector<float> ramp(32);
  for (int j = 0; j < 32; ++j) ramp[size_t(j)] = float(j - 16);
  q = quantized(DType::Q4_0, ramp);
  EXPECT_EQ(u16_at(q, 0), 0x4000);  // fp16 2.0
  auto level = [](int j) { return std::min(15, (j + 1) / 2); };
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[size_t(2 + j)], level(j) | (level(j + 16) << 4)) << j;
  EXPECT_EQ(q[2], 0x80);
  const auto y = dequantized(DType::Q4_0, q, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[size_t(j)], float(level(j) - 8) * 2.f) << j;
}

TEST(Quant, Q4_KKnownBlocks) {
  // All equal 1: every sub-block fits scale 1/15, min 0, levels 15; the six-bit
  // scales are all 63 (so d = (1/15)/63) and the mins 0.
  auto q = quantized(DType::Q4_K, std::vector<float>(256, 1.f));
  EXPECT_EQ(u16_at(q, 0), f32_to_f16((1.f / 15) / 63.f));
  EXPECT_EQ(u16_at(q, 2), 0);
  const uint8_t scales_ones[12] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(q[size_t(4 + i)], scales_ones[i]) << i;
  for (int i = 0; i < 128; ++i) ASSERT_EQ(q[size_t(16 + i)], 0xff) << i;
  for (float v : dequantized(DType::Q4_K, q, 256)) EXPECT_NEAR(v, 1.f, 1e-3);
  // All equal -1: scale 0, min 1: d = 0, dmin = 1/63, six-bit mins all 63.
  q = quantized(DType::Q4_K, std::vector<float>(256, -1.f));
  EXPECT_EQ(u16_at(q, 0), 0);
  EXPECT_EQ(u16_at(q, 2), f32_to_f16(1.f / 63));
  const uint8_t scales_minus[12] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xf0, 0xf0, 0xf0, 0xf0};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(q[size_t(4 + i)], scales_minus[i]) << i;
  for (float v : dequantized(DType::Q4_K, q, 256)) EXPECT_NEAR(v, -1.f, 1e-3);
}

TEST(Quant, Q4_KScaleMinUnpacking) {
  // Sub-block j < 4: bytes j, j+4 (low 6 bits). j >= 4: nibbles of byte j+4,
  // high 2 bits from the top of bytes j-4 (scale) and j (min).
  uint8_t packed[12];
  for (int i = 0; i < 12; ++i) packed[i] = uint8_t(0x11 * i + 0x45);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    quant::q4k_scale_min(packed, j, sc, m);
    if (j < 4) {
      EXPECT_EQ(sc, packed[j] & 63);
      EXPECT_EQ(m, packed[j + 4] & 63);
    } else {
      EXPECT_EQ(sc, (packed[j + 4] & 15) + 16 * (packed[j - 4] >> 6));
      EXPECT_EQ(m, (packed[j + 4] >> 4) + 16 * (packed[j] >> 6));
    }
  }
}

TEST(Quant, Q4_KDequantizesHandMadeBlock) {
  // d = 0.5, dmin = 0.25, sub-block j scale j + 1, min 2j; qs[i] = i % 256.
  std::vector<uint8_t> blk(144, 0);
  blk[0] = 0x00; blk[1] = 0x38;  // fp16 0.5
  blk[2] = 0x00; blk[3] = 0x34;  // fp16 0.25
  uint8_t* sc = blk.data() + 4;
  for (int j = 0; j < 4; ++j) {
    sc[j] = uint8_t(j + 1);
    sc[j + 4] = uint8_t(2 * j);
  }
  for (int j = 4; j < 8; ++j) sc[j + 4] = uint8_t((j + 1) | ((2 * j) << 4));
  for (int i = 0; i < 128; ++i) blk[size_t(16 + i)] = uint8_t(i * 7);
  const auto y = dequantized(DType::Q4_K, blk, 256);
  for (int j = 0; j < 8; ++j)
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = blk[size_t(16 + 32 * (j / 2) + l)];
      const int q = j % 2 == 0 ? byte & 15 : byte >> 4;
      ASSERT_EQ(y[size_t(32 * j + l)], 0.5f * float(j + 1) * float(q) - 0.25f * float(2 * j)) << j << " " << l;
    }
}

// Round trip of N(0, 1) rows: every value within the block's step (plus fp16
// scale rounding), and a typical RMS error for the format.
TEST(Quant, RoundTripErrorBounds) {
  struct Case {
    DType t;
    double rms_bound;
  };
  for (const Case& c : {Case{DType::Q8_0, 0.006}, Case{DType::Q4_0, 0.11}, Case{DType::Q4_K, 0.09}}) {
    const int64_t n = 8192;
    const auto x = normal_row(size_t(n), 5);
    const auto y = dequantized(c.t, quantized(c.t, x), n);
    const int64_t block = 32;  // values sharing a scale (a Q4_K sub-block)
    double sq = 0;
    for (int64_t b = 0; b < n; b += block) {
      float amax = 0, lo = 0, hi = 0;
      for (int64_t i = b; i < b + block; ++i) {
        amax = std::max(amax, std::fabs(x[size_t(i)]));
        lo = std::min(lo, x[size_t(i)]);
        hi = std::max(hi, x[size_t(i)]);
      }
      // Q8_0: half a step of amax/127; Q4_0: one step of amax/8 (the far end
      // clamps at 15); Q4_K: a step of the sub-block range / 15 and the
      // 6-bit scale rounding.
      const double bound = c.t == DType::Q8_0   ? amax / 127.0 * 0.5 * 1.01 + amax * 0x1p-11
                           : c.t == DType::Q4_0 ? amax / 8.0 * 1.01 + amax * 0x1p-10
                                                : (hi - lo) / 15.0 * 1.5;
      for (int64_t i = b; i < b + block; ++i) {
        const double err = std::fabs(double(y[size_t(i)]) - x[size_t(i)]);
        ASSERT_LE(err, bound) << dtype_name(c.t) << " value " << i;
        sq += err * err;
      }
    }
    EXPECT_LT(std::sqrt(sq / double(n)), c.rms_bound) << dtype_name(c.t);
  }
}

TEST(Quant, PlainTypesConvert) {
  const auto x = normal_row(64, 3);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const auto y = dequantized(t, quantized(t, x), 64);
    for (size_t i = 0; i < x.size(); ++i) {
      const float want = t == DType::F32 ? x[i] : t == DType::F16 ? f16_to_f32(f32_to_f16(x[i]))
                                                                  : bf16_to_f32(f32_to_bf16(x[i]));
      EXPECT_EQ(y[i], want);
    }
  }
}

TEST(Quant, MatrixRowsAndConversionOfBlockTypes) {
  const int64_t rows = 3, cols = 512;
  const auto x = normal_row(size_t(rows * cols), 9);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const auto q = quantized(t, x);
    const Matrix W{q.data(), t, rows, cols};
    EXPECT_EQ(W.row_bytes(), dtype_bytes(t, cols));
    EXPECT_EQ(W.row_ptr(2), q.data() + 2 * dtype_bytes(t, cols));
    std::vector<float> row(static_cast<size_t>(cols));
    convert_to_f32(W.row_ptr(1), t, cols, row.data());
    const auto all = dequantized(t, q, rows * cols);
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(row[size_t(i)], all[size_t(cols + i)]);
  }
}

TEST(Quant, BadSizesAndValuesAreErrors) {
  std::vector<float> x(512, 1.f), y(512);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), 33, q.data()), Error);
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), -32, q.data()), Error);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), 32, q.data()), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_K, q.data(), 300, y.data()), Error);
  EXPECT_THROW(convert_to_f32(q.data(), DType::Q8_0, 31, y.data()), Error);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), 32, q.data()), Error);
  x[7] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), 256, q.data()), Error);
  try {
    quantize_row(DType::Q4_K, x.data(), 100, q.data());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_k"), std::string::npos) << e.what();
  }
}

TEST(Quant, KernelsRefuseRowsOfPartBlocks) {
  std::vector<uint8_t> q(4096);
  std::vector<float> x(1024, 1.f), y(1024);
  EXPECT_THROW(linear(x.data(), 1, Matrix{q.data(), DType::Q8_0, 4, 48}, y.data()), Error);
  EXPECT_THROW(linear(x.data(), 2, Matrix{q.data(), DType::Q4_K, 2, 320}, y.data()), Error);
  EXPECT_THROW(linear_in_out(x.data(), 1, Matrix{q.data(), DType::Q4_0, 32, 32}, y.data()), Error);
}

}  // namespace
}  // namespace aviary::ops
