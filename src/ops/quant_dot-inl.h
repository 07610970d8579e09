// Integer matrix products of Q8_0 / Q4_0 weights with q8-quantized activations
// (ops/quant_dot.h), once per Highway target; linear.cpp dispatches to them.
//
// Per block of 32 values the weight integers are widened to int16 and
// multiplied with the activation integers in pairs (ReorderWidenMulAccumulate:
// pmaddwd on x86, exact in int32), the int32 lanes are converted to fp32 and
// added to the fp32 accumulator lanes with one MulAdd by d_w * d_x.
//
// Summation order: every output y[t, o] is one vector accumulator fed, block
// after block, with the same lane sums and the same scale, then a sum of
// lanes; the tile an output is computed in does not change that, so row t of
// a T-row product equals the product of row t alone, bit for bit.

// Per-target include guard (the Highway pattern).
#if defined(AVIARY_OPS_QUANT_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef AVIARY_OPS_QUANT_DOT_INL_H_
#undef AVIARY_OPS_QUANT_DOT_INL_H_
#else
#define AVIARY_OPS_QUANT_DOT_INL_H_
#endif

#include <cstddef>
#include <cstdint>

#include "hwy/highway.h"
#include "ops/load-inl.h"
#include "ops/quant.h"
#include "ops/quant_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

using DW32 = hn::RebindToSigned<DF>;             // int32 lanes, as many as fp32 lanes
#if HWY_TARGET == HWY_SCALAR
using DW16 = hn::Rebind<int16_t, DW32>;          // one lane: the pairing degenerates to a product
#else
using DW16 = hn::Repartition<int16_t, DW32>;     // int16 lanes, twice as many
#endif
using VW16 = hn::Vec<DW16>;
using VW32 = hn::Vec<DW32>;

constexpr size_t kBlockValues = quant::kGroupElems;
// int16 vectors per block of 32 values (1 with AVX-512, 2 with AVX2, 4 with 128-bit vectors).
constexpr size_t kVecsPerBlock = kBlockValues / hn::MaxLanes(DW16());
static_assert(kBlockValues % hn::MaxLanes(DW16()) == 0, "a block must fill whole int16 vectors");

// The fp16 at p (little endian) as fp32 in every lane: one hardware conversion
// (F16C / NEON) where the target has one; exact either way.
HWY_INLINE VF BroadcastHalf(const uint8_t* p) {
  const hn::CappedTag<hwy::float16_t, 1> dh;
  const hn::CappedTag<float, 1> d1;
  return hn::Set(DF(), hn::GetLane(hn::PromoteTo(d1, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)))));
}

// Weight row decoders: Scale(b) is block b's d_w in every lane, Ints(b, k) its int16 vector k.
struct Q8_0Ints {
  static constexpr size_t kBlockBytes = 34;
  const uint8_t* row;
  HWY_INLINE VF Scale(size_t b) const { return BroadcastHalf(row + b * kBlockBytes); }
  HWY_INLINE VW16 Ints(size_t b, size_t k) const {
    const DW16 d16;
    const auto* q = reinterpret_cast<const int8_t*>(row + b * kBlockBytes + quant::kQ8_0Qs);
    return hn::PromoteTo(d16, hn::LoadU(hn::Rebind<int8_t, DW16>(), q + k * hn::Lanes(d16)));
  }
};

struct Q4_0Ints {
  static constexpr size_t kBlockBytes = 18;
  const uint8_t* row;
  HWY_INLINE VF Scale(size_t b) const { return BroadcastHalf(row + b * kBlockBytes); }
  // Values 0-15 are the low nibbles of the 16 bytes, 16-31 the high nibbles.
  HWY_INLINE VW16 Ints(size_t b, size_t k) const {
    const DW16 d16;
    const uint8_t* qs = row + b * kBlockBytes + quant::kQ4_0Qs;
    const auto eight = hn::Set(d16, int16_t(8));
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
    if constexpr (hn::MaxLanes(DW16()) == 32) {  // one vector holds the block: both nibble halves
      const hn::Half<DW16> dh;
      const auto bytes = hn::BitCast(dh, hn::PromoteTo(hn::RebindToUnsigned<decltype(dh)>(),
                                                       hn::LoadU(hn::Rebind<uint8_t, decltype(dh)>(), qs)));
      // Both halves shifted as one vector, masked once.
      const auto both = hn::Combine(d16, hn::ShiftRight<4>(bytes), bytes);
      return hn::Sub(hn::And(both, hn::Set(d16, int16_t(0xF))), eight);
    } else
#endif
    {
      const size_t e = k * hn::Lanes(d16);
      const hn::RebindToUnsigned<DW16> du16;
      const auto bytes = hn::BitCast(d16, hn::PromoteTo(du16, hn::LoadU(hn::Rebind<uint8_t, DW16>(), qs + (e & 15))));
      const auto q = e < 16 ? hn::And(bytes, hn::Set(d16, int16_t(0xF))) : hn::ShiftRight<4>(bytes);
      return hn::Sub(q, eight);
    }
  }
};

// Lanes whose sum is the exact integer dot product of one block.
HWY_INLINE VW32 BlockDot(const VW16 (&w)[kVecsPerBlock], const VW16 (&x)[kVecsPerBlock]) {
  const DW32 d32;
  VW32 sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
  for (size_t k = 0; k < kVecsPerBlock; ++k) sum0 = hn::ReorderWidenMulAccumulate(d32, w[k], x[k], sum0, sum1);
  return hn::RearrangeToOddPlusEven(sum0, sum1);
}

// y[c * y_stride + r] = row r (of kR at w, row_bytes apart) . activation row c
// (of kC, x_stride values apart), over `blocks` blocks. Per block, each weight
// and activation vector is loaded once for the whole tile.
template <class Ints, size_t kR, size_t kC>
HWY_INLINE void IntDotTile(const uint8_t* w, size_t row_bytes, const int16_t* HWY_RESTRICT xq,
                           const float* HWY_RESTRICT xd, size_t x_stride, size_t blocks, float* HWY_RESTRICT y,
                           size_t y_stride) {
  const DF df;
  const DW16 d16;
  Ints rows[kR];
  VF acc[kR][kC];
  for (size_t r = 0; r < kR; ++r) {
    rows[r].row = w + r * row_bytes;
    for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::Zero(df);
  }
  const size_t d_stride = x_stride / kBlockValues;
  for (size_t b = 0; b < blocks; ++b) {
    VW16 xv[kC][kVecsPerBlock];
    VF dx[kC];
    for (size_t c = 0; c < kC; ++c) {
      for (size_t k = 0; k < kVecsPerBlock; ++k)
        xv[c][k] = hn::LoadU(d16, xq + c * x_stride + b * kBlockValues + k * hn::Lanes(d16));
      dx[c] = hn::Set(df, xd[c * d_stride + b]);
    }
    for (size_t r = 0; r < kR; ++r) {
      VW16 wv[kVecsPerBlock];
      for (size_t k = 0; k < kVecsPerBlock; ++k) wv[k] = rows[r].Ints(b, k);
      const VF dw = rows[r].Scale(b);
      for (size_t c = 0; c < kC; ++c)
        acc[r][c] = hn::MulAdd(hn::ConvertTo(df, BlockDot(wv, xv[c])), hn::Mul(dw, dx[c]), acc[r][c]);
    }
  }
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) y[c * y_stride + r] = Sum(df, acc[r][c]);
}

// quantize_activations (ops/quant_dot.h) for `blocks` blocks of 32 values:
// the same IEEE operations as the scalar reference (a maximum, one division,
// one multiply per value, round to nearest even), so bit for bit its results.
void QuantizeActivationBlocks(const float* HWY_RESTRICT x, size_t blocks, int16_t* HWY_RESTRICT q,
                              float* HWY_RESTRICT d) {
  const DF df;
  const hn::Rebind<int16_t, DF> d16;
  const size_t L = hn::Lanes(df);
  for (size_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kBlockValues;
    VF vmax = hn::Zero(df);
    for (size_t j = 0; j < kBlockValues; j += L) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float scale = amax / 127.f;
    const VF inv = hn::Set(df, scale != 0.f ? 1.f / scale : 0.f);
    for (size_t j = 0; j < kBlockValues; j += L)
      hn::StoreU(hn::DemoteTo(d16, hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), inv))), d16,
                 q + b * kBlockValues + j);
    d[b] = f16_to_f32(f32_to_f16(scale));
  }
}

// Rows per tile: decode (one activation row) and prefill (kIntTileT rows).
constexpr size_t kIntGemvRows = 8;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kIntTileRows = 4;
#else
constexpr size_t kIntTileRows = 2;
#endif
constexpr size_t kIntTileT = 4;

// Output rows [r0, r1) of y = x W^T, x given quantized (q: [T, in], d: [T, in / 32]).
template <class Ints>
void IntLinearRowsT(const int16_t* xq, const float* xd, size_t T, const uint8_t* W, size_t in, size_t out,
                    size_t r0, size_t r1, float* y) {
  const size_t blocks = in / kBlockValues, row_bytes = blocks * Ints::kBlockBytes;
  const uint8_t* w = W + r0 * row_bytes;
  size_t o = r0;
  if (T == 1) {
    for (; o + kIntGemvRows <= r1; o += kIntGemvRows, w += kIntGemvRows * row_bytes)
      IntDotTile<Ints, kIntGemvRows, 1>(w, row_bytes, xq, xd, in, blocks, y + o, out);
    for (; o < r1; ++o, w += row_bytes) IntDotTile<Ints, 1, 1>(w, row_bytes, xq, xd, in, blocks, y + o, out);
    return;
  }
  for (; o + kIntTileRows <= r1; o += kIntTileRows, w += kIntTileRows * row_bytes) {
    size_t t = 0;
    for (; t + kIntTileT <= T; t += kIntTileT)
      IntDotTile<Ints, kIntTileRows, kIntTileT>(w, row_bytes, xq + t * in, xd + t * blocks, in, blocks,
                                                 y + t * out + o, out);
    for (; t < T; ++t)
      IntDotTile<Ints, kIntTileRows, 1>(w, row_bytes, xq + t * in, xd + t * blocks, in, blocks, y + t * out + o, out);
  }
  for (; o < r1; ++o, w += row_bytes)
    for (size_t t = 0; t < T; ++t)
      IntDotTile<Ints, 1, 1>(w, row_bytes, xq + t * in, xd + t * blocks, in, blocks, y + t * out + o, out);
}

// Output rows [r0, r1) for Q8_0 / Q4_0 W.
void IntLinearRows(const int16_t* xq, const float* xd, size_t T, const Matrix& W, size_t r0, size_t r1, float* y) {
  const auto* data = static_cast<const uint8_t*>(W.data);
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  if (W.dtype == DType::Q8_0) return IntLinearRowsT<Q8_0Ints>(xq, xd, T, data, in, out, r0, r1, y);
  return IntLinearRowsT<Q4_0Ints>(xq, xd, T, data, in, out, r0, r1, y);
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
