// The GGML block types beyond Q8_0/Q4_0/Q4_K (Q4_1, Q5_0, Q5_1, Q5_K, Q6_K):
// hand-packed blocks decoded to the values the format defines, round-trip
// error bounds, stability of a second round trip, and bad sizes.
// (Their bytes were also checked against ggml's own quantize_row_*_ref and
// dequantize_row_* once, outside the suite: identical on 160k random blocks.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ops/matrix.h"
#include "ops/quant.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace aviary::ops {
namespace {

constexpr DType kNewTypes[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q5_K, DType::Q6_K};

using test::dequantized;
using test::normal_row;
using test::quantized;

void put_f16(std::vector<uint8_t>& b, size_t at, float v) {
  const uint16_t h = f32_to_f16(v);
  b[at] = uint8_t(h & 0xff);
  b[at + 1] = uint8_t(h >> 8);
}

TEST(QuantTypes, BlockSizesAndNamesAreGgmls) {
  struct Want {
    DType t;
    int64_t elems;
    size_t bytes;
    const char* name;
  };
  for (const Want& w : {Want{DType::Q4_1, 32, 20, "q4_1"}, Want{DType::Q5_0, 32, 22, "q5_0"},
                        Want{DType::Q5_1, 32, 24, "q5_1"}, Want{DType::Q5_K, 256, 176, "q5_k"},
                        Want{DType::Q6_K, 256, 210, "q6_k"}}) {
    EXPECT_TRUE(dtype_is_quantized(w.t)) << w.name;
    EXPECT_EQ(dtype_block_elems(w.t), w.elems) << w.name;
    EXPECT_EQ(dtype_block_bytes(w.t), w.bytes) << w.name;
    EXPECT_EQ(dtype_name(w.t), w.name);
    EXPECT_EQ(dtype_bytes(w.t, 4096), size_t(4096 / w.elems) * w.bytes) << w.name;
  }
  std::set<std::string_view> names;
  for (DType t : kAllDTypes) names.insert(dtype_name(t));
  EXPECT_EQ(names.size(), std::size(kAllDTypes));
  EXPECT_EQ(names.count("?"), 0u);
}

// Q4_1: d = 0.5, m = -1; byte j holds level j (low nibble, value j) and 15 - j
// (high nibble, value j + 16); x = d * q + m.
TEST(QuantTypes, Q4_1DecodesHandPackedBlock) {
  std::vector<uint8_t> blk(20);
  put_f16(blk, 0, 0.5f);
  put_f16(blk, 2, -1.f);
  for (int j = 0; j < 16; ++j) blk[size_t(4 + j)] = uint8_t(j | ((15 - j) << 4));
  const auto y = dequantized(DType::Q4_1, blk, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[size_t(j)], 0.5f * float(j) - 1.f) << j;
    EXPECT_EQ(y[size_t(j + 16)], 0.5f * float(15 - j) - 1.f) << j;
  }
  EXPECT_EQ(y[0], -1.f);
  EXPECT_EQ(y[16], 6.5f);
}

// Q5_0 / Q5_1: the fifth bit of value j is bit j of the little-endian word
// after the fp16 field(s). qh = 0x8000'0001: values 0 and 31 have it set.
TEST(QuantTypes, Q5_0AndQ5_1DecodeHandPackedBlocks) {
  std::vector<uint8_t> q50(22, 0);
  put_f16(q50, 0, 0.25f);
  q50[2] = 0x01;
  q50[5] = 0x80;
  for (int j = 0; j < 16; ++j) q50[size_t(6 + j)] = uint8_t(j | ((15 - j) << 4));
  auto y = dequantized(DType::Q5_0, q50, 32);
  EXPECT_EQ(y[0], 0.25f * float(16 + 0 - 16));   // level 16: bit set, nibble 0
  EXPECT_EQ(y[1], 0.25f * float(1 - 16));        // level 1
  EXPECT_EQ(y[15], 0.25f * float(15 - 16));      // level 15
  EXPECT_EQ(y[16], 0.25f * float(15 - 16));      // high nibble of byte 0: 15
  EXPECT_EQ(y[31], 0.25f * float(16 + 0 - 16));  // high nibble of byte 15: 0, bit set
  for (int j = 1; j < 15; ++j) EXPECT_EQ(y[size_t(j)], 0.25f * float(j - 16)) << j;

  std::vector<uint8_t> q51(24, 0);
  put_f16(q51, 0, 0.125f);
  put_f16(q51, 2, 0.5f);
  for (int i = 0; i < 4; ++i) q51[size_t(4 + i)] = 0xAA;  // odd values have bit 4
  for (int j = 0; j < 16; ++j) q51[size_t(8 + j)] = 0xF3;  // low level 3, high level 15
  y = dequantized(DType::Q5_1, q51, 32);
  for (int j = 0; j < 32; ++j) {
    const int level = (j < 16 ? 3 : 15) + (j % 2 == 1 ? 16 : 0);
    EXPECT_EQ(y[size_t(j)], 0.125f * float(level) + 0.5f) << j;
  }
  EXPECT_EQ(y[31], 0.125f * 31 + 0.5f);
}

// Packs 6-bit scales and mins the K-quant way (the inverse of q4k_scale_min).
void pack_scale_min(const int* sc, const int* m, uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// Q5_K: d = 1/64, dmin = 1/128, sub-block j scale 40 + j, min 2j + 33 (so the
// high bits of the 6-bit fields are used); value l of sub-block j has level
// (l + 3j) % 32: its low nibble in qs[32 (j / 2) + l] (low half for even j),
// bit 4 in bit j of qh[l].
TEST(QuantTypes, Q5_KDecodesHandPackedBlock) {
  std::vector<uint8_t> blk(176, 0);
  put_f16(blk, 0, 1.f / 64);
  put_f16(blk, 2, 1.f / 128);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = 40 + j;
    m[j] = 2 * j + 33;
  }
  pack_scale_min(sc, m, blk.data() + 4);
  auto level = [](int j, int l) { return (l + 3 * j) % 32; };
  for (int j = 0; j < 8; ++j)
    for (int l = 0; l < 32; ++l) {
      blk[size_t(48 + 32 * (j / 2) + l)] |= uint8_t((level(j, l) & 15) << (4 * (j % 2)));
      blk[size_t(16 + l)] |= uint8_t((level(j, l) >> 4) << j);
    }
  const auto y = dequantized(DType::Q5_K, blk, 256);
  for (int j = 0; j < 8; ++j)
    for (int l = 0; l < 32; ++l)
      ASSERT_EQ(y[size_t(32 * j + l)], (1.f / 64) * float(sc[j]) * float(level(j, l)) - (1.f / 128) * float(m[j]))
          << j << " " << l;
}

// Q6_K: d = 1/32 at byte 208, int8 scales s[g] = 9 g - 70 at bytes 192..207
// (negative and positive), value i has level (7 i) % 64: value 128 h + 32 s + l
// keeps its low 4 bits in ql[64 h + 32 (s % 2) + l] (low nibble for s < 2) and
// its high 2 bits at bit 2 s of qh[32 h + l]; x = d * s[i / 16] * (level - 32).
TEST(QuantTypes, Q6_KDecodesHandPackedBlock) {
  std::vector<uint8_t> blk(210, 0);
  put_f16(blk, 208, 1.f / 32);
  for (int g = 0; g < 16; ++g) blk[size_t(192 + g)] = uint8_t(int8_t(9 * g - 70));
  auto level = [](int i) { return (7 * i) % 64; };
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, s = (i % 128) / 32, l = i % 32;
    blk[size_t(64 * h + 32 * (s % 2) + l)] |= uint8_t((level(i) & 15) << (4 * (s / 2)));
    blk[size_t(128 + 32 * h + l)] |= uint8_t((level(i) >> 4) << (2 * s));
  }
  const auto y = dequantized(DType::Q6_K, blk, 256);
  for (int i = 0; i < 256; ++i)
    ASSERT_EQ(y[size_t(i)], (1.f / 32) * float(9 * (i / 16) - 70) * float(level(i) - 32)) << i;
  EXPECT_EQ(y[1], (1.f / 32) * -70.f * float(7 - 32));
}

TEST(QuantTypes, ZerosRoundTripToZeros) {
  for (DType t : kNewTypes) {
    const auto q = quantized(t, std::vector<float>(512, 0.f));
    for (float v : dequantized(t, q, 512)) ASSERT_EQ(v, 0.f) << dtype_name(t);
  }
  // Q5_0 stores level 16 for zero (d = 0 / -16 = -0): nibbles 0, every high bit set.
  const auto q = quantized(DType::Q5_0, std::vector<float>(32, 0.f));
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x80);
  for (int i = 2; i < 6; ++i) EXPECT_EQ(q[size_t(i)], 0xff) << i;
  for (int i = 6; i < 22; ++i) EXPECT_EQ(q[size_t(i)], 0x00) << i;
  // Q6_K writes an all-zero block as 210 zero bytes.
  for (uint8_t b : quantized(DType::Q6_K, std::vector<float>(256, 0.f))) ASSERT_EQ(b, 0);
}

TEST(QuantTypes, KnownSmallBlocks) {
  // Q4_1 of a ramp 0..31: d = 31/15, m = 0, levels round(j * 15/31).
  std::vector<float> ramp(32);
  for (int j = 0; j < 32; ++j) ramp[size_t(j)] = float(j);
  auto q = quantized(DType::Q4_1, ramp);
  EXPECT_EQ(uint16_t(q[0] | (q[1] << 8)), f32_to_f16(31.f / 15));
  EXPECT_EQ(q[2], 0);
  EXPECT_EQ(q[3], 0);
  const float id = 1.f / (31.f / 15);
  for (int j = 0; j < 16; ++j) {
    const int lo = std::min(15, int(float(j) * id + 0.5f)), hi = std::min(15, int(float(j + 16) * id + 0.5f));
    EXPECT_EQ(q[size_t(4 + j)], lo | (hi << 4)) << j;
  }
  // Q5_1 of the same ramp is exact: d = 1, m = 0, level j.
  q = quantized(DType::Q5_1, ramp);
  const auto y = dequantized(DType::Q5_1, q, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[size_t(j)], float(j)) << j;
  // Q5_0 of -16..15 is exact too: d = -16 / -16 = 1, level j.
  for (int j = 0; j < 32; ++j) ramp[size_t(j)] = float(j - 16);
  EXPECT_EQ(dequantized(DType::Q5_0, quantized(DType::Q5_0, ramp), 32), ramp);
  // Q6_K of groups -32, -28, ..., 28 is exact: each group's largest magnitude
  // is -32, so it fits scale 1 at level x; d = 1 / -128 and every group scale -128.
  std::vector<float> ints(256);
  for (int i = 0; i < 256; ++i) ints[size_t(i)] = float(4 * (i % 16) - 32);
  EXPECT_EQ(dequantized(DType::Q6_K, quantized(DType::Q6_K, ints), 256), ints);
}

// Round trip of N(0, 1) rows: every value within a step of its group's range
// (plus fp16 rounding of the scale), and the typical RMS error of the format.
TEST(QuantTypes, RoundTripErrorBounds) {
  struct Case {
    DType t;
    int levels;  // 2^bits - 1
    double rms_bound;
  };
  std::vector<double> rms;
  for (const Case& c : {Case{DType::Q4_1, 15, 0.085}, Case{DType::Q5_0, 31, 0.047}, Case{DType::Q5_1, 31, 0.041},
                        Case{DType::Q5_K, 31, 0.039}, Case{DType::Q6_K, 63, 0.019}}) {
    const int64_t n = 8192;
    const auto x = normal_row(size_t(n), 5);
    const auto y = dequantized(c.t, quantized(c.t, x), n);
    const int64_t group = c.t == DType::Q6_K ? 16 : 32;  // values sharing a scale
    double sq = 0;
    for (int64_t b = 0; b < n; b += group) {
      float lo = 0, hi = 0;
      for (int64_t i = b; i < b + group; ++i) {
        lo = std::min(lo, x[size_t(i)]);
        hi = std::max(hi, x[size_t(i)]);
      }
      // A step of the group's range (two for the symmetric types, which
      // span +-amax with one level fewer on the positive side; K types also
      // round their sub-block scales to 6 or 8 bits).
      const double step = (hi - lo) / c.levels;
      const double bound = c.t == DType::Q5_0 ? 2 * step * 1.01 : step * 1.5;
      for (int64_t i = b; i < b + group; ++i) {
        const double err = std::fabs(double(y[size_t(i)]) - x[size_t(i)]);
        ASSERT_LE(err, bound) << dtype_name(c.t) << " value " << i;
        sq += err * err;
      }
    }
    rms.push_back(std::sqrt(sq / double(n)));
    EXPECT_LT(rms.back(), c.rms_bound) << dtype_name(c.t) << " rms " << rms.back();
  }
  // More bits, smaller errors: q4_1 > q5_1 and q5_k > q6_k.
  EXPECT_GT(rms[0], rms[2]);
  EXPECT_GT(rms[3], rms[4]);
}

// Quantizing what a round trip gave changes it by at most a sliver of a step:
// the values already sit on (almost) the grid the quantizer picks again.
TEST(QuantTypes, SecondRoundTripIsStable) {
  for (DType t : kNewTypes) {
    const int64_t n = 4096;
    const auto x = normal_row(size_t(n), 11);
    const auto once = dequantized(t, quantized(t, x), n);
    const auto twice = dequantized(t, quantized(t, once), n);
    size_t changed = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double diff = std::fabs(double(twice[size_t(i)]) - once[size_t(i)]);
      ASSERT_LE(diff, 0.02) << dtype_name(t) << " value " << i;
      changed += diff != 0;
    }
    EXPECT_LT(changed, size_t(n) / 4) << dtype_name(t);
  }
}

TEST(QuantTypes, MatrixRowsConvertLikeTheWholeBuffer) {
  const int64_t rows = 3, cols = 512;
  const auto x = normal_row(size_t(rows * cols), 9);
  for (DType t : kNewTypes) {
    const auto q = quantized(t, x);
    const Matrix W{q.data(), t, rows, cols};
    EXPECT_EQ(W.row_bytes(), dtype_bytes(t, cols));
    std::vector<float> row(static_cast<size_t>(cols));
    convert_to_f32(W.row_ptr(1), t, cols, row.data());
    const auto all = dequantized(t, q, rows * cols);
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(row[size_t(i)], all[size_t(cols + i)]) << dtype_name(t);
  }
}

TEST(QuantTypes, BadSizesAndValuesAreErrors) {
  std::vector<float> x(512, 1.f), y(512);
  std::vector<uint8_t> q(2048);
  for (DType t : kNewTypes) {
    const int64_t block = dtype_block_elems(t);
    EXPECT_THROW(quantize_row(t, x.data(), block + 1, q.data()), Error) << dtype_name(t);
    EXPECT_THROW(dequantize_row(t, q.data(), block / 2, y.data()), Error) << dtype_name(t);
    EXPECT_THROW(quantize_row(t, x.data(), -block, q.data()), Error) << dtype_name(t);
    try {
      quantize_row(t, x.data(), block + 16, q.data());
      FAIL() << dtype_name(t);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(dtype_name(t)), std::string::npos) << e.what();
    }
    std::vector<float> bad(x.begin(), x.begin() + block);
    bad[3] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(quantize_row(t, bad.data(), block, q.data()), Error) << dtype_name(t);
  }
}

// Extreme but finite inputs neither crash nor trip the sanitizers: huge
// values (the range overflows to inf), tiny subnormal ones, mixed signs.
TEST(QuantTypes, ExtremeFiniteValuesAreSafe) {
  const float big = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
  for (DType t : kNewTypes) {
    const int64_t n = 256;
    for (const std::vector<float>& x :
         {std::vector<float>(n, big), std::vector<float>(n, -big), std::vector<float>(n, tiny),
          [&] {
            std::vector<float> v(n);
            for (int64_t i = 0; i < n; ++i) v[size_t(i)] = i % 2 ? big : -big;
            return v;
          }()}) {
      std::vector<uint8_t> q(dtype_bytes(t, n));
      quantize_row(t, x.data(), n, q.data());
      std::vector<float> y(static_cast<size_t>(n));
      dequantize_row(t, q.data(), n, y.data());
    }
  }
}

}  // namespace
}  // namespace aviary::ops
