// Matrix products over stored weight types, with Highway dynamic dispatch.
//
// Summation order: every output y[t, o] of `linear` is one vector accumulator
// fed with MulAdd over the full vectors of the row in order, then the zero
// padded tail, then a sum of lanes; every output of `linear_in_out` is one
// lane fed with MulAdd over i in order. Neither depends on T, on the tile a
// value is computed in, or on the thread, so sequence mode (T > 1) equals
// token-by-token mode (T = 1) bit for bit. Block-quantized weights take the
// kernels of quant_simd-inl.h, which keep the same promise.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/linear.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <algorithm>
#include <vector>
#include "ops/load-inl.h"
#include "ops/matrix.h"
#include "ops/quant_simd-inl.h"
#include "ops/quant_dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

// Register tiles: weight rows x activation rows (linear), column vectors x
// activation rows (linear_in_out). AVX-512 has 32 vector registers, the
// others 16.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kTileRows = 4;
constexpr size_t kTileVecs = 4;
#else
constexpr size_t kTileRows = 2;
constexpr size_t kTileVecs = 2;
#endif
constexpr size_t kTileT = 4;    // activation rows per tile when T > 1
constexpr size_t kGemvRows = 8; // weight rows per tile when T = 1

// y[c * y_stride + r] = dot(w + r * w_stride, x + c * x_stride) over n
// elements, for a kR x kC tile: each weight vector loaded once per tile.
template <size_t kR, size_t kC, typename TW>
HWY_INLINE void DotTile(const TW* HWY_RESTRICT w, size_t w_stride, const float* HWY_RESTRICT x,
                        size_t x_stride, size_t n, float* HWY_RESTRICT y, size_t y_stride) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[kR][kC];
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::Zero(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    VF xv[kC];
    for (size_t c = 0; c < kC; ++c) xv[c] = hn::LoadU(d, x + c * x_stride + i);
    for (size_t r = 0; r < kR; ++r) {
      const VF wv = LoadF32(d, w + r * w_stride + i);
      for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::MulAdd(wv, xv[c], acc[r][c]);
    }
  }
  if (i < n) {
    VF xv[kC];
    for (size_t c = 0; c < kC; ++c) xv[c] = LoadPartialF32(d, x + c * x_stride + i, n - i);
    for (size_t r = 0; r < kR; ++r) {
      const VF wv = LoadPartialF32(d, w + r * w_stride + i, n - i);
      for (size_t c = 0; c < kC; ++c) acc[r][c] = hn::MulAdd(wv, xv[c], acc[r][c]);
    }
  }
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) y[c * y_stride + r] = Sum(d, acc[r][c]);
}

// kR weight rows (at w) against all T activation rows, kTileT at a time:
// the rows are read from memory once and reused from cache for every block.
template <size_t kR, typename TW>
HWY_INLINE void RowsAllT(const float* x, size_t T, const TW* w, size_t in, size_t out, float* y) {
  size_t t = 0;
  for (; t + kTileT <= T; t += kTileT) DotTile<kR, kTileT>(w, in, x + t * in, in, in, y + t * out, out);
  for (; t < T; ++t) DotTile<kR, 1>(w, in, x + t * in, in, in, y + t * out, out);
}

template <typename TW>
void LinearRowsT(const float* x, size_t T, const TW* W, size_t in, size_t out, size_t r0, size_t r1,
                 float* y) {
  size_t o = r0;
  if (T == 1) {  // GEMV: one pass over the weights, kGemvRows rows at a time
    for (; o + kGemvRows <= r1; o += kGemvRows) DotTile<kGemvRows, 1>(W + o * in, in, x, in, in, y + o, out);
    for (; o < r1; ++o) DotTile<1, 1>(W + o * in, in, x, in, in, y + o, out);
    return;
  }
  // Activation rows in chunks that stay in L2 (~256 KiB) while every weight
  // row of [r0, r1) passes over them; the weight tile stays in L1 meanwhile.
  const size_t t_chunk = std::max<size_t>(kTileT, (size_t(1) << 16) / in / kTileT * kTileT);
  for (size_t t0 = 0; t0 < T; t0 += t_chunk) {
    const size_t tn = std::min(t_chunk, T - t0);
    const float* xc = x + t0 * in;
    float* yc = y + t0 * out;
    for (o = r0; o + kTileRows <= r1; o += kTileRows) RowsAllT<kTileRows>(xc, tn, W + o * in, in, out, yc + o);
    for (; o < r1; ++o) RowsAllT<1>(xc, tn, W + o * in, in, out, yc + o);
  }
}

// Output rows [r0, r1) of y = x W^T, W stored [out, in].
void LinearRows(const float* x, size_t T, const Matrix& W, size_t r0, size_t r1, float* y) {
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  switch (W.dtype) {
    case DType::F32:
      return LinearRowsT(x, T, static_cast<const float*>(W.data), in, out, r0, r1, y);
    case DType::F16:
      return LinearRowsT(x, T, static_cast<const hwy::float16_t*>(W.data), in, out, r0, r1, y);
    case DType::BF16:
      return LinearRowsT(x, T, static_cast<const hwy::bfloat16_t*>(W.data), in, out, r0, r1, y);
    case DType::Q8_0:
      return QuantLinearRowsT<Q8_0Row>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q4_0:
      return QuantLinearRowsT<Q4_0Row>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q4_K:
      return QuantLinearRowsT<Q4_KRow>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q4_1:
      return QuantLinearRowsT<Q4_1Row>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q5_0:
      return QuantLinearRowsT<Q5_0Row>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q5_1:
      return QuantLinearRowsT<Q5_1Row>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q5_K:
      return QuantLinearRowsT<Q5_KRow>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
    case DType::Q6_K:
      return QuantLinearRowsT<Q6_KRow>(x, T, static_cast<const uint8_t*>(W.data), in, out, r0, r1, y);
  }
}

// y[c * y_stride + j] = sum_i x[c * in + i] * W[i * w_stride + j] for j in
// kV vectors of columns and kC activation rows; with kPartial the last vector
// has only `tail` < Lanes columns.
template <size_t kV, size_t kC, bool kPartial, typename TW>
HWY_INLINE void AxpyTile(const float* HWY_RESTRICT x, size_t in, const TW* HWY_RESTRICT W, size_t w_stride,
                         size_t tail, float* HWY_RESTRICT y, size_t y_stride) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[kV][kC];
  for (size_t v = 0; v < kV; ++v)
    for (size_t c = 0; c < kC; ++c) acc[v][c] = hn::Zero(d);
  for (size_t i = 0; i < in; ++i) {
    const TW* row = W + i * w_stride;
    VF xv[kC];
    for (size_t c = 0; c < kC; ++c) xv[c] = hn::Set(d, x[c * in + i]);
    for (size_t v = 0; v < kV; ++v) {
      const VF wv = kPartial && v + 1 == kV ? LoadPartialF32(d, row + v * L, tail) : LoadF32(d, row + v * L);
      for (size_t c = 0; c < kC; ++c) acc[v][c] = hn::MulAdd(xv[c], wv, acc[v][c]);
    }
  }
  for (size_t c = 0; c < kC; ++c)
    for (size_t v = 0; v < kV; ++v) {
      float* dst = y + c * y_stride + v * L;
      if (kPartial && v + 1 == kV)
        StorePartial(d, acc[v][c], dst, tail);
      else
        hn::StoreU(acc[v][c], d, dst);
    }
}

// The first n columns of kC rows of y (from W's first n columns), kV vectors
// of columns at a time.
template <size_t kV, size_t kC, typename TW>
HWY_INLINE void InOutRowsCols(const float* x, size_t in, const TW* W, size_t w_stride, size_t n, float* y,
                              size_t y_stride) {
  const size_t L = hn::Lanes(hn::ScalableTag<float>());
  size_t j = 0;
  for (; j + kV * L <= n; j += kV * L) AxpyTile<kV, kC, false>(x, in, W + j, w_stride, 0, y + j, y_stride);
  for (; j + L <= n; j += L) AxpyTile<1, kC, false>(x, in, W + j, w_stride, 0, y + j, y_stride);
  if (j < n) AxpyTile<1, kC, true>(x, in, W + j, w_stride, n - j, y + j, y_stride);
}

// Accumulators of one in-out tile: kV column vectors x kInOutAccs / kV rows.
constexpr size_t kInOutAccs = kTileVecs * kTileT;

// The first n columns of all T rows of y, tiles of kV column vectors.
template <size_t kV, typename TW>
HWY_INLINE void InOutSlice(const float* x, size_t T, size_t in, const TW* W, size_t w_stride, size_t n, float* y,
                           size_t y_stride) {
  constexpr size_t kC = kInOutAccs / kV;
  size_t t = 0;
  for (; t + kC <= T; t += kC) InOutRowsCols<kV, kC>(x + t * in, in, W, w_stride, n, y + t * y_stride, y_stride);
  for (; t < T; ++t) InOutRowsCols<kV, 1>(x + t * in, in, W, w_stride, n, y + t * y_stride, y_stride);
}

template <typename TW>
void LinearInOutColsT(const float* x, size_t T, const TW* W, size_t in, size_t out, size_t j0, size_t j1,
                      float* y) {
  // Column slices of W small enough (~512 KiB) to stay in L2 while every
  // activation row passes over them: a slice is read from memory once per
  // product, not once per tile of rows. Tall W (the FFN value matrix, 8192
  // rows) get slices of one or two vectors, and tiles of more rows to match.
  // When several tiles of rows will pass, the slice is first copied to
  // contiguous rows: W's own rows lie `out` elements apart, a power of two in
  // the models, and would all fall in the same few cache sets.
  const size_t L = hn::Lanes(hn::ScalableTag<float>());
  const size_t slice = std::max(L, (size_t(1) << 19) / (in * sizeof(TW)) / L * L);
  thread_local std::vector<TW> packed;
  const bool pack = T > kInOutAccs / kTileVecs;
  if (pack && packed.size() < in * slice) packed.resize(in * slice);
  for (size_t js = j0; js < j1; js += slice) {
    const size_t n = std::min(j1, js + slice) - js;
    const TW* w = W + js;
    size_t w_stride = out;
    if (pack) {
      // Rows a page or more apart defeat the hardware prefetchers: ask ahead.
      constexpr size_t kAhead = 16;
      for (size_t i = 0; i < in; ++i) {
        if (i + kAhead < in) hwy::Prefetch(W + (i + kAhead) * out + js);
        const TW* src = W + i * out + js;
        TW* dst = packed.data() + i * n;
        for (size_t j = 0; j < n; ++j) dst[j] = src[j];
      }
      w = packed.data();
      w_stride = n;
    }
    if (slice >= kTileVecs * L)
      InOutSlice<kTileVecs>(x, T, in, w, w_stride, n, y + js, out);
    else if (slice >= 2 * L)
      InOutSlice<2>(x, T, in, w, w_stride, n, y + js, out);
    else
      InOutSlice<1>(x, T, in, w, w_stride, n, y + js, out);
  }
}

// Output columns [j0, j1) of y = x W, W stored [in, out].
void LinearInOutCols(const float* x, size_t T, const Matrix& W, size_t j0, size_t j1, float* y) {
  const size_t in = size_t(W.rows), out = size_t(W.cols);
  switch (W.dtype) {
    case DType::F32:
      return LinearInOutColsT(x, T, static_cast<const float*>(W.data), in, out, j0, j1, y);
    case DType::F16:
      return LinearInOutColsT(x, T, static_cast<const hwy::float16_t*>(W.data), in, out, j0, j1, y);
    case DType::BF16:
      return LinearInOutColsT(x, T, static_cast<const hwy::bfloat16_t*>(W.data), in, out, j0, j1, y);
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K:
    case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q5_K: case DType::Q6_K:
      return;  // refused by linear_in_out before dispatch
  }
}

float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, size_t n) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc0 = hn::Zero(d), acc1 = hn::Zero(d), acc2 = hn::Zero(d), acc3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(d, a + i + L), hn::LoadU(d, b + i + L), acc1);
    acc2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * L), hn::LoadU(d, b + i + 2 * L), acc2);
    acc3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * L), hn::LoadU(d, b + i + 3 * L), acc3);
  }
  for (; i + L <= n; i += L) acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
  if (i < n) acc1 = hn::MulAdd(LoadPartialF32(d, a + i, n - i), LoadPartialF32(d, b + i, n - i), acc1);
  return Sum(d, hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3)));
}

void Axpy(float alpha, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t n) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const VF va = hn::Set(d, alpha);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  if (i < n) StorePartial(d, hn::MulAdd(va, LoadPartialF32(d, x + i, n - i), LoadPartialF32(d, y + i, n - i)), y + i, n - i);
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ops/float_panels.h"
#include "ops/linear.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "ops/quant_dot_vnni.h"
#include "ops/reference.h"
#include "ops/simd.h"
#include "ops/split.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::ops {

HWY_EXPORT(LinearRows);
HWY_EXPORT(IntLinearRows);
HWY_EXPORT(QuantizeActivationBlocks);
HWY_EXPORT(LinearInOutCols);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);

namespace {
// Below this many multiply-adds a product runs on the calling thread alone:
// handing out the work would cost more than it saves.
constexpr int64_t kParallelMacs = int64_t(1) << 17;
// Work is split in blocks of this many output rows (linear) or columns
// (linear_in_out: a multiple of every vector width, so blocks start on whole vectors).
constexpr int64_t kRowGrain = 16;
constexpr int64_t kColGrain = 64;
}  // namespace

void quantize_activations(const float* x, int64_t T, int64_t n, int16_t* q, float* d) {
  if (detail::use_reference()) return reference::quantize_activations(x, T, n, q, d);
  if (T > 0 && n > 0) HWY_DYNAMIC_DISPATCH(QuantizeActivationBlocks)(x, size_t(T * n / quant::kGroupElems), q, d);
}

namespace {
// Q8_0 / Q4_0 weights in panels (ops/quant_dot_vnni.h).
void linear_panels(const float* x, int64_t T, const Matrix& W, float* y) {
  const int64_t in = W.cols, blocks = in / quant::kGroupElems;
  const vnni::PanelActivations a = vnni::panel_activations(size_t(T * in), T == 1);
  parallel_rows(T, 2 * in, [&](int64_t t0, int64_t t1) {
    vnni::quantize_for_panels(x + t0 * in, size_t(t1 - t0), size_t(in), W.dtype, a.x8 + t0 * in, a.corr + t0 * blocks,
                              a.xd + t0 * blocks);
  });
  const int64_t panels = (W.rows + int64_t(vnni::kPanelRows) - 1) / int64_t(vnni::kPanelRows);
  auto run = [&](int64_t begin, int64_t end) {
    vnni::packed_rows(a.x8, a.corr, a.xd, size_t(T), W, size_t(begin), size_t(end), y);
  };
  if (W.rows * in * T < kParallelMacs) return run(0, panels);
  default_pool().parallel_for(panels, run, split_for(T));
}

// Q8_0 / Q4_0 weights: the activations quantized once (ops/quant_dot.h), then
// the integer kernel over blocks of output rows.
void linear_q8(const float* x, int64_t T, const Matrix& W, float* y) {
  if (W.packed && vnni::enabled()) return linear_panels(x, T, W, y);
  const int64_t in = W.cols, blocks = in / quant::kGroupElems, rows = W.rows;
  // Grown to the largest product seen, then reused: no allocation per token.
  thread_local std::vector<int16_t> xq;
  thread_local std::vector<float> xd;
  if (xq.size() < size_t(T * in)) xq.resize(size_t(T * in));
  if (xd.size() < size_t(T * blocks)) xd.resize(size_t(T * blocks));
  // Pointers, not the thread_local names: a lambda run on a worker would see that worker's buffers.
  int16_t* q = xq.data();
  float* d = xd.data();
  parallel_rows(T, 2 * in, [&](int64_t t0, int64_t t1) {
    quantize_activations(x + t0 * in, t1 - t0, in, q + t0 * in, d + t0 * blocks);
  });
  const auto kernel = &HWY_DYNAMIC_DISPATCH(IntLinearRows);
  if (rows * in * T < kParallelMacs) return kernel(q, d, size_t(T), W, 0, size_t(rows), y);
  default_pool().parallel_for(
      (rows + kRowGrain - 1) / kRowGrain,
      [&](int64_t begin, int64_t end) {
        kernel(q, d, size_t(T), W, size_t(begin * kRowGrain), size_t(std::min(end * kRowGrain, rows)), y);
      },
      split_for(T));
}
}  // namespace

void linear(const float* x, int64_t T, const Matrix& W, float* y) {
  check_whole_blocks(W.dtype, W.cols, "linear: weight row");
  if (uses_q8_activations(W.dtype)) {
    if (detail::use_reference()) return reference::linear_q8(x, T, W, y);
    if (T > 0 && W.rows > 0) linear_q8(x, T, W, y);
    return;
  }
  if (detail::use_reference()) return reference::linear(x, T, W, y);
  if (T <= 0 || W.rows <= 0) return;
  if (W.packed && float_panels::runs()) return float_panels::linear(x, T, W, y);
  const auto kernel = &HWY_DYNAMIC_DISPATCH(LinearRows);
  const int64_t rows = W.rows;
  if (rows * W.cols * T < kParallelMacs) return kernel(x, size_t(T), W, 0, size_t(rows), y);
  default_pool().parallel_for(
      (rows + kRowGrain - 1) / kRowGrain,
      [&](int64_t begin, int64_t end) {
        kernel(x, size_t(T), W, size_t(begin * kRowGrain), size_t(std::min(end * kRowGrain, rows)), y);
      },
      split_for(T));
}

void linear_rows(const float* x, int64_t T, const Matrix& W, int64_t r0, int64_t r1, float* y) {
  check_whole_blocks(W.dtype, W.cols, "linear: weight row");
  if (T <= 0 || r0 >= r1) return;
  const auto R = int64_t(float_panels::kRows);
  const bool whole_panels = r0 % R == 0 && (r1 % R == 0 || r1 == W.rows);
  if (!detail::use_reference() && W.packed && !dtype_is_quantized(W.dtype) && float_panels::runs() && whole_panels)
    return float_panels::rows(x, T, W, size_t(r0 / R), size_t((r1 + R - 1) / R), y);
  const Matrix part{W.row_ptr(r0), W.dtype, r1 - r0, W.cols};
  for (int64_t t = 0; t < T; ++t) linear(x + t * W.cols, 1, part, y + t * W.rows + r0);
}

namespace {
bool float_panels_on() {
  static const bool on = [] {
    const char* v = std::getenv("AVIARY_FLOAT_PANELS");
    return !(v && std::string_view(v) == "0");
  }();
  return on && float_panels::runs();
}
}  // namespace

namespace {
bool packs(const Matrix& W) {
  return W.rows > 0 && W.cols > 0 && (dtype_is_quantized(W.dtype) ? vnni::packs(W.dtype) : float_panels_on());
}
}  // namespace

size_t linear_pack_bytes(const Matrix& W) {
  if (!packs(W)) return 0;
  return dtype_is_quantized(W.dtype) ? vnni::packed_bytes(W) : float_panels::packed_bytes(W);
}

void linear_pack(Matrix& W, uint8_t* dst) {
  if (!packs(W))
    throw Error("linear_pack: " + std::string(dtype_name(W.dtype)) + " weights are not packed on this CPU");
  check_whole_blocks(W.dtype, W.cols, "linear_pack: weight row");
  if (dtype_is_quantized(W.dtype)) {
    vnni::pack(W, dst);
    W.packed_as_bf16 = false;
  } else {
    W.packed_as_bf16 = float_panels::pack(W, dst);
  }
  W.packed = dst;
}

void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y) {
  check_not_quantized(W.dtype, "linear_in_out");
  if (detail::use_reference()) return reference::linear_in_out(x, T, W, y);
  if (T <= 0 || W.cols <= 0) return;
  const auto kernel = &HWY_DYNAMIC_DISPATCH(LinearInOutCols);
  const int64_t cols = W.cols;
  if (cols * W.rows * T < kParallelMacs) return kernel(x, size_t(T), W, 0, size_t(cols), y);
  default_pool().parallel_for((cols + kColGrain - 1) / kColGrain, [&](int64_t begin, int64_t end) {
    kernel(x, size_t(T), W, size_t(begin * kColGrain), size_t(std::min(end * kColGrain, cols)), y);
  });
}

float dot(const float* a, const float* b, int64_t n) {
  if (detail::use_reference()) return reference::dot(a, b, n);
  return n > 0 ? HWY_DYNAMIC_DISPATCH(Dot)(a, b, size_t(n)) : 0.f;
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
  if (detail::use_reference()) return reference::axpy(alpha, x, y, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(Axpy)(alpha, x, y, size_t(n));
}

}  // namespace aviary::ops

#endif  // HWY_ONCE
