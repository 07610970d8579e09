// Matrix products with block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K; layouts in ops/quant.h), once per Highway target;
// linear.cpp dispatches to them.
//
// Weights are dequantised in registers, one vector at a time, to exactly the
// fp32 values dequantize_row() gives (each is one rounding of the exact
// d * q [- m], and the vector code performs that same single rounding), then
// multiplied with the activations in fp32. (For every type here the product
// of the fp16 scale, the integer sub-scale and the level is exact in fp32, so
// a fused or unfused multiply-add rounds the same way, once.)
//
// Summation order: every output y[t, o] is one vector accumulator fed with
// MulAdd(w, x) over the vectors of the row in order, then a sum of lanes.
// Decode (T = 1) reads the quantized row directly; prefill (T > 1) first
// dequantises a panel of kPanelElems columns of a few rows into an L1 buffer
// and reuses it for every activation row, keeping the accumulators in memory
// between panels (a store and reload is exact). Both feed each accumulator the
// same sequence, so row t of a T-row product equals the product of row t alone.

// Per-target include guard (the Highway pattern).
#if defined(AVIARY_OPS_QUANT_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef AVIARY_OPS_QUANT_SIMD_INL_H_
#undef AVIARY_OPS_QUANT_SIMD_INL_H_
#else
#define AVIARY_OPS_QUANT_SIMD_INL_H_
#endif

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "ops/load-inl.h"
#include "ops/quant.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

using DI32 = hn::RebindToSigned<DF>;
using DI8 = hn::Rebind<int8_t, DF>;
using DU8 = hn::Rebind<uint8_t, DF>;

constexpr size_t kGroup = quant::kGroupElems;  // values sharing one scale
// A vector never straddles a group, nor the two nibble halves of a Q4_0 block.
static_assert(16 % kMaxLanes == 0, "quantized kernels assume at most 16 fp32 lanes");

// fp16 at p (little endian) as fp32, exactly: a finite half shifted into a
// float's exponent and mantissa fields is the value times 2^-112 (subnormal
// halves become subnormal floats), so one exact multiply rescales it.
HWY_INLINE float HalfToFloat(const uint8_t* p) {
  const uint32_t h = quant::read_u16(p);
  if ((h & 0x7c00u) == 0x7c00u) return f16_to_f32(uint16_t(h));  // inf, NaN
  const float magnitude = std::bit_cast<float>((h & 0x7fffu) << 13) * 0x1p112f;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | ((h & 0x8000u) << 16));
}

// Decoders of one weight row: SetBlock(row, b) selects block b, SetGroup(g)
// its group g of kGroup values, Load(df, k) dequantises values [kL, kL + L) of
// that group. Each declares its constructor: on NEON Highway's vector type
// has an always-inline one, and the constructor the compiler would generate
// for a struct holding a vector lies outside the target's attributes
// ("inlining failed ... target specific option mismatch").
struct Q8_0Row {
  static constexpr size_t kBlockElems = 32, kBlockBytes = 34, kGroups = 1;
  HWY_INLINE Q8_0Row() {}
  const int8_t* qs;
  VF d;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    const uint8_t* blk = row + b * kBlockBytes;
    qs = reinterpret_cast<const int8_t*>(blk + quant::kQ8_0Qs);
    d = hn::Set(DF(), HalfToFloat(blk));
  }
  HWY_INLINE void SetGroup(size_t) {}
  HWY_INLINE VF Load(DF df, size_t k) const {
    const auto q = hn::PromoteTo(DI32(), hn::LoadU(DI8(), qs + k * hn::Lanes(df)));
    return hn::Mul(hn::ConvertTo(df, q), d);
  }
};

struct Q4_0Row {
  static constexpr size_t kBlockElems = 32, kBlockBytes = 18, kGroups = 1;
  HWY_INLINE Q4_0Row() {}
  const uint8_t* qs;
  VF d;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    const uint8_t* blk = row + b * kBlockBytes;
    qs = blk + quant::kQ4_0Qs;
    d = hn::Set(DF(), HalfToFloat(blk));
  }
  HWY_INLINE void SetGroup(size_t) {}
  HWY_INLINE VF Load(DF df, size_t k) const {
    const size_t e = k * hn::Lanes(df);  // values 0-15: low nibbles of qs[0-15]; 16-31: high nibbles
    const auto bytes = hn::PromoteTo(DI32(), hn::LoadU(DU8(), qs + (e & 15)));
    const auto q = e < 16 ? hn::And(bytes, hn::Set(DI32(), 0xF)) : hn::ShiftRight<4>(bytes);
    return hn::Mul(hn::ConvertTo(df, hn::Sub(q, hn::Set(DI32(), 8))), d);
  }
};

struct Q4_KRow {
  static constexpr size_t kBlockElems = 256, kBlockBytes = 144, kGroups = 8;
  HWY_INLINE Q4_KRow() {}
  const uint8_t* blk;
  const uint8_t* qs;
  float d, dmin;
  int shift;
  VF scale, neg_min;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    blk = row + b * kBlockBytes;
    d = HalfToFloat(blk);
    dmin = HalfToFloat(blk + quant::kQ4_KDmin);
  }
  HWY_INLINE void SetGroup(size_t g) {
    int sc, m;
    quant::q4k_scale_min(blk + quant::kQ4_KScales, int(g), sc, m);
    scale = hn::Set(DF(), d * float(sc));
    neg_min = hn::Set(DF(), -(dmin * float(m)));
    qs = blk + quant::kQ4_KQs + 32 * (g / 2);  // groups 2p and 2p+1 share these bytes
    shift = int(g % 2) * 4;
  }
  HWY_INLINE VF Load(DF df, size_t k) const {
    const auto bytes = hn::PromoteTo(DI32(), hn::LoadU(DU8(), qs + k * hn::Lanes(df)));
    const auto q = hn::And(hn::ShiftRightSame(bytes, shift), hn::Set(DI32(), 0xF));
    return hn::MulAdd(hn::ConvertTo(df, q), scale, neg_min);
  }
};

struct Q4_1Row {
  static constexpr size_t kBlockElems = 32, kBlockBytes = 20, kGroups = 1;
  HWY_INLINE Q4_1Row() {}
  const uint8_t* qs;
  VF d, m;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    const uint8_t* blk = row + b * kBlockBytes;
    qs = blk + quant::kQ4_1Qs;
    d = hn::Set(DF(), HalfToFloat(blk));
    m = hn::Set(DF(), HalfToFloat(blk + quant::kQ4_1M));
  }
  HWY_INLINE void SetGroup(size_t) {}
  HWY_INLINE VF Load(DF df, size_t k) const {
    const size_t e = k * hn::Lanes(df);  // nibbles as in Q4_0
    const auto bytes = hn::PromoteTo(DI32(), hn::LoadU(DU8(), qs + (e & 15)));
    const auto q = e < 16 ? hn::And(bytes, hn::Set(DI32(), 0xF)) : hn::ShiftRight<4>(bytes);
    return hn::MulAdd(hn::ConvertTo(df, q), d, m);
  }
};

// Bit j of a 32-bit word at lane j (for Q5_0 / Q5_1's high bits).
alignas(64) constexpr int32_t kLaneBit[32] = {
    1 << 0,  1 << 1,  1 << 2,  1 << 3,  1 << 4,  1 << 5,  1 << 6,  1 << 7,  1 << 8,  1 << 9,  1 << 10,
    1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21,
    1 << 22, 1 << 23, 1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 30, INT32_MIN};

// The 5-bit levels of values [e, e + L) of a Q5_0 / Q5_1 block: nibbles as in
// Q4_0, bit 4 of value j in bit j of qh.
HWY_INLINE hn::Vec<DI32> Level5(const uint8_t* qs, int32_t qh, size_t e) {
  const DI32 di;
  const auto bytes = hn::PromoteTo(di, hn::LoadU(DU8(), qs + (e & 15)));
  const auto low = e < 16 ? hn::And(bytes, hn::Set(di, 0xF)) : hn::ShiftRight<4>(bytes);
  const auto bit_set = hn::Ne(hn::And(hn::Set(di, qh), hn::LoadU(di, kLaneBit + e)), hn::Zero(di));
  return hn::Or(low, hn::IfThenElseZero(bit_set, hn::Set(di, 16)));
}

struct Q5_0Row {
  static constexpr size_t kBlockElems = 32, kBlockBytes = 22, kGroups = 1;
  HWY_INLINE Q5_0Row() {}
  const uint8_t* qs;
  int32_t qh;
  VF d;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    const uint8_t* blk = row + b * kBlockBytes;
    qs = blk + quant::kQ5_0Qs;
    qh = int32_t(quant::read_u32(blk + quant::kQ5_0Qh));
    d = hn::Set(DF(), HalfToFloat(blk));
  }
  HWY_INLINE void SetGroup(size_t) {}
  HWY_INLINE VF Load(DF df, size_t k) const {
    const auto q = hn::Sub(Level5(qs, qh, k * hn::Lanes(df)), hn::Set(DI32(), 16));
    return hn::Mul(hn::ConvertTo(df, q), d);
  }
};

struct Q5_1Row {
  static constexpr size_t kBlockElems = 32, kBlockBytes = 24, kGroups = 1;
  HWY_INLINE Q5_1Row() {}
  const uint8_t* qs;
  int32_t qh;
  VF d, m;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    const uint8_t* blk = row + b * kBlockBytes;
    qs = blk + quant::kQ5_1Qs;
    qh = int32_t(quant::read_u32(blk + quant::kQ5_1Qh));
    d = hn::Set(DF(), HalfToFloat(blk));
    m = hn::Set(DF(), HalfToFloat(blk + quant::kQ5_1M));
  }
  HWY_INLINE void SetGroup(size_t) {}
  HWY_INLINE VF Load(DF df, size_t k) const {
    return hn::MulAdd(hn::ConvertTo(df, Level5(qs, qh, k * hn::Lanes(df))), d, m);
  }
};

struct Q5_KRow {
  static constexpr size_t kBlockElems = 256, kBlockBytes = 176, kGroups = 8;
  HWY_INLINE Q5_KRow() {}
  const uint8_t* blk;
  const uint8_t* qs;
  float d, dmin;
  int shift, high_shift;
  VF scale, neg_min;
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    blk = row + b * kBlockBytes;
    d = HalfToFloat(blk);
    dmin = HalfToFloat(blk + quant::kQ5_KDmin);
  }
  HWY_INLINE void SetGroup(size_t g) {
    int sc, m;
    quant::q4k_scale_min(blk + quant::kQ5_KScales, int(g), sc, m);
    scale = hn::Set(DF(), d * float(sc));
    neg_min = hn::Set(DF(), -(dmin * float(m)));
    qs = blk + quant::kQ5_KQs + 32 * (g / 2);  // groups 2p and 2p+1 share these bytes
    shift = int(g % 2) * 4;
    high_shift = int(g);  // bit 4 of value l is bit g of qh[l]
  }
  HWY_INLINE VF Load(DF df, size_t k) const {
    const DI32 di;
    const size_t e = k * hn::Lanes(df);
    const auto bytes = hn::PromoteTo(di, hn::LoadU(DU8(), qs + e));
    const auto highs = hn::PromoteTo(di, hn::LoadU(DU8(), blk + quant::kQ5_KQh + e));
    const auto low = hn::And(hn::ShiftRightSame(bytes, shift), hn::Set(di, 0xF));
    const auto high = hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(highs, high_shift), hn::Set(di, 1)));
    return hn::MulAdd(hn::ConvertTo(df, hn::Or(low, high)), scale, neg_min);
  }
};

struct Q6_KRow {
  static constexpr size_t kBlockElems = 256, kBlockBytes = 210, kGroups = 8;
  HWY_INLINE Q6_KRow() {}
  const uint8_t* blk;
  float d;
  quant::Q6KGroup group;
  VF scale_lo, scale_hi;  // d * scale of values 0-15 and 16-31 of the group
  HWY_INLINE void SetBlock(const uint8_t* row, size_t b) {
    blk = row + b * kBlockBytes;
    d = HalfToFloat(blk + quant::kQ6_KD);
  }
  HWY_INLINE void SetGroup(size_t g) {
    group = quant::q6k_group(blk, int(g));
    scale_lo = hn::Set(DF(), d * float(group.scale_lo));
    scale_hi = hn::Set(DF(), d * float(group.scale_hi));
  }
  HWY_INLINE VF Load(DF df, size_t k) const {
    const DI32 di;
    const size_t e = k * hn::Lanes(df);  // a vector never straddles the two 16-value halves
    const auto lows = hn::PromoteTo(di, hn::LoadU(DU8(), group.ql + e));
    const auto highs = hn::PromoteTo(di, hn::LoadU(DU8(), group.qh + e));
    const auto low = hn::And(hn::ShiftRightSame(lows, group.ql_shift), hn::Set(di, 0xF));
    const auto high = hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(highs, group.qh_shift), hn::Set(di, 3)));
    const auto q = hn::Sub(hn::Or(low, high), hn::Set(di, 32));
    return hn::Mul(hn::ConvertTo(df, q), e < 16 ? scale_lo : scale_hi);
  }
};

// Weight rows per decode tile; weight rows x activation rows per prefill tile.
constexpr size_t kQuantGemvRows = 4;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kQuantTileRows = 4;
#else
constexpr size_t kQuantTileRows = 2;
#endif
constexpr size_t kQuantTileT = 4;
constexpr size_t kPanelElems = 256;  // columns dequantised at a time (a multiple of every block)
constexpr size_t kTChunk = 64;       // activation rows whose accumulators stay in the buffer

// y[r] = row r of W (kR rows from w) . x, reading the quantized rows once.
template <class Row, size_t kR>
HWY_INLINE void QuantGemvTile(const uint8_t* w, size_t row_bytes, size_t in, const float* HWY_RESTRICT x,
                              float* HWY_RESTRICT y) {
  const DF df;
  const size_t L = hn::Lanes(df);
  Row rows[kR];
  VF acc[kR];
  for (size_t r = 0; r < kR; ++r) acc[r] = hn::Zero(df);
  for (size_t b = 0; b < in / Row::kBlockElems; ++b) {
    for (size_t r = 0; r < kR; ++r) rows[r].SetBlock(w + r * row_bytes, b);
    // Unrolled, so each group's scale unpacking and nibble shift are constants.
#pragma GCC unroll 8
    for (size_t g = 0; g < Row::kGroups; ++g) {
      for (size_t r = 0; r < kR; ++r) rows[r].SetGroup(g);
      const float* xg = x + b * Row::kBlockElems + g * kGroup;
      for (size_t k = 0; k * L < kGroup; ++k) {
        const VF xv = hn::LoadU(df, xg + k * L);
        for (size_t r = 0; r < kR; ++r) acc[r] = hn::MulAdd(rows[r].Load(df, k), xv, acc[r]);
      }
    }
  }
  for (size_t r = 0; r < kR; ++r) y[r] = Sum(df, acc[r]);
}

// Dequantises blocks [b0, b0 + nb) of kR rows into wbuf[r * kPanelElems + i].
template <class Row, size_t kR>
HWY_INLINE void DequantPanel(const uint8_t* w, size_t row_bytes, size_t b0, size_t nb, float* HWY_RESTRICT wbuf) {
  const DF df;
  const size_t L = hn::Lanes(df);
  for (size_t r = 0; r < kR; ++r) {
    float* dst = wbuf + r * kPanelElems;
    Row row;
    for (size_t b = b0; b < b0 + nb; ++b) {
      row.SetBlock(w + r * row_bytes, b);
      for (size_t g = 0; g < Row::kGroups; ++g) {
        row.SetGroup(g);
        for (size_t k = 0; k * L < kGroup; ++k, dst += L) hn::Store(row.Load(df, k), df, dst);
      }
    }
  }
}

// kR dequantised panel rows x kC activation rows (x_stride apart) over n
// columns, continuing the accumulators kept at acc_buf[(c * kR + r) * L].
template <size_t kR, size_t kC>
HWY_INLINE void PanelTile(const float* HWY_RESTRICT wbuf, const float* HWY_RESTRICT x, size_t x_stride, size_t n,
                          float* HWY_RESTRICT acc_buf) {
  const DF df;
  const size_t L = hn::Lanes(df);
  VF acc[kR][kC];
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::Load(df, acc_buf + (c * kR + r) * L);
  for (size_t i = 0; i < n; i += L) {
    VF xv[kC];
    for (size_t c = 0; c < kC; ++c) xv[c] = hn::LoadU(df, x + c * x_stride + i);
    for (size_t r = 0; r < kR; ++r) {
      const VF wv = hn::Load(df, wbuf + r * kPanelElems + i);
      for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::MulAdd(wv, xv[c], acc[r][c]);
    }
  }
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) hn::Store(acc[r][c], df, acc_buf + (c * kR + r) * L);
}

// kR weight rows (at w; outputs at y, rows `out` apart) against all T
// activation rows: each panel is dequantised once per kTChunk activation rows.
template <class Row, size_t kR>
HWY_NOINLINE void QuantGemmRows(const float* x, size_t T, const uint8_t* w, size_t row_bytes, size_t in, size_t out,
                                float* y) {
  const DF df;
  const size_t L = hn::Lanes(df);
  HWY_ALIGN float wbuf[kR * kPanelElems];
  HWY_ALIGN float acc_buf[kTChunk * kR * kMaxLanes];
  for (size_t t0 = 0; t0 < T; t0 += kTChunk) {
    const size_t tn = std::min(kTChunk, T - t0);
    std::fill(acc_buf, acc_buf + tn * kR * L, 0.f);
    for (size_t e0 = 0; e0 < in; e0 += kPanelElems) {
      const size_t n = std::min(kPanelElems, in - e0);
      DequantPanel<Row, kR>(w, row_bytes, e0 / Row::kBlockElems, n / Row::kBlockElems, wbuf);
      const float* xp = x + t0 * in + e0;
      size_t t = 0;
      for (; t + kQuantTileT <= tn; t += kQuantTileT)
        PanelTile<kR, kQuantTileT>(wbuf, xp + t * in, in, n, acc_buf + t * kR * L);
      for (; t < tn; ++t) PanelTile<kR, 1>(wbuf, xp + t * in, in, n, acc_buf + t * kR * L);
    }
    for (size_t t = 0; t < tn; ++t)
      for (size_t r = 0; r < kR; ++r) y[(t0 + t) * out + r] = Sum(df, hn::Load(df, acc_buf + (t * kR + r) * L));
  }
}

// Output rows [r0, r1) of y = x W^T for quantized W (in = W.cols, a whole
// number of blocks, checked by the caller).
template <class Row>
void QuantLinearRowsT(const float* x, size_t T, const uint8_t* W, size_t in, size_t out, size_t r0, size_t r1,
                      float* y) {
  const size_t row_bytes = in / Row::kBlockElems * Row::kBlockBytes;
  size_t o = r0;
  if (T == 1) {
    for (; o + kQuantGemvRows <= r1; o += kQuantGemvRows)
      QuantGemvTile<Row, kQuantGemvRows>(W + o * row_bytes, row_bytes, in, x, y + o);
    for (; o < r1; ++o) QuantGemvTile<Row, 1>(W + o * row_bytes, row_bytes, in, x, y + o);
    return;
  }
  for (; o + kQuantTileRows <= r1; o += kQuantTileRows)
    QuantGemmRows<Row, kQuantTileRows>(x, T, W + o * row_bytes, row_bytes, in, out, y + o);
  for (; o < r1; ++o) QuantGemmRows<Row, 1>(x, T, W + o * row_bytes, row_bytes, in, out, y + o);
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
