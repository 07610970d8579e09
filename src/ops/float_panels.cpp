// Float panel kernels (ops/float_panels.h), with Highway dynamic dispatch.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/float_panels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "ops/float_panels.h"
#include "ops/split.h"
#include "ops/load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

#if HWY_HAVE_SCALABLE
constexpr bool kPanelsRun = false;
constexpr size_t kPanelVecs = 1;
#else
constexpr bool kPanelsRun = float_panels::kRows % kMaxLanes == 0;
constexpr size_t kPanelVecs = float_panels::kRows / kMaxLanes;  // vectors per panel column
#endif
// Accumulators a tile keeps in registers: 32 vector registers on AVX-512, 16 elsewhere.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr size_t kAccs = 24;
#else
constexpr size_t kAccs = 8;
#endif
constexpr size_t kPrefillT = kAccs / kPanelVecs > 0 ? kAccs / kPanelVecs : 1;  // activation rows per tile
constexpr size_t kDecodePanels = 8 / kPanelVecs > 0 ? 8 / kPanelVecs : 1;      // panels per decode tile
constexpr size_t kSinglePanelDecodeInputs = 4096;  // PanelRowsT

bool PanelsRun() { return kPanelsRun; }

// Stores the lanes of output rows r .. r + Lanes that are below `valid` (the
// last panel of a matrix may be partly padding) at y + r.
HWY_INLINE void StoreRows(DF d, VF v, size_t r, size_t valid, float* HWY_RESTRICT y) {
  if (r >= valid) return;
  if (r + hn::Lanes(d) <= valid)
    hn::StoreU(v, d, y + r);
  else
    StorePartial(d, v, y + r, valid - r);
}

// kP panels (w, panel_stride elements apart) x kC activation rows, element i
// of row c at x[i * kC + c] (rows interleaved: one contiguous read per
// column): y[c * y_stride + p * 32 + r] for the first `valid` rows.
template <size_t kP, size_t kC, typename TW>
HWY_INLINE void PanelTile(const TW* HWY_RESTRICT w, size_t panel_stride, const float* HWY_RESTRICT x, size_t in,
                          float* HWY_RESTRICT y, size_t y_stride, size_t valid) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[kP][kC][kPanelVecs];
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kC; ++c)
      for (size_t v = 0; v < kPanelVecs; ++v) acc[p][c][v] = hn::Zero(d);
  for (size_t i = 0; i < in; ++i) {
    // The weights first, then one broadcast activation at a time: with 24
    // accumulators only that order fits the register file (no spills).
    VF wv[kP][kPanelVecs];
    for (size_t p = 0; p < kP; ++p)
      for (size_t v = 0; v < kPanelVecs; ++v) wv[p][v] = LoadF32(d, w + p * panel_stride + i * float_panels::kRows + v * L);
    for (size_t c = 0; c < kC; ++c) {
      const VF xb = hn::Set(d, x[i * kC + c]);
      for (size_t p = 0; p < kP; ++p)
        for (size_t v = 0; v < kPanelVecs; ++v) acc[p][c][v] = hn::MulAdd(wv[p][v], xb, acc[p][c][v]);
    }
  }
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kC; ++c)
      for (size_t v = 0; v < kPanelVecs; ++v)
        StoreRows(d, acc[p][c][v], p * float_panels::kRows + v * L, valid, y + c * y_stride);
}

// dst[i * kC + c] = x[c * in + i]: kC activation rows, `in` apart, interleaved
// for a prefill tile. Four rows at a time go through 4x4 transposes (a
// scalar copy cost as much as the products of a matrix of a few panels,
// such as a LoRA factor).
template <size_t kC>
HWY_INLINE void Interleave(const float* HWY_RESTRICT x, size_t in, float* HWY_RESTRICT dst) {
  size_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  if constexpr (kC % 4 == 0) {
    const hn::FixedTag<float, 4> d4;
    for (; i + 4 <= in; i += 4)
      for (size_t g = 0; g < kC; g += 4) {
        const float* src = x + g * in + i;
        const auto r0 = hn::LoadU(d4, src), r1 = hn::LoadU(d4, src + in), r2 = hn::LoadU(d4, src + 2 * in),
                   r3 = hn::LoadU(d4, src + 3 * in);
        const auto t0 = hn::InterleaveLower(d4, r0, r1), t1 = hn::InterleaveLower(d4, r2, r3);
        const auto t2 = hn::InterleaveUpper(d4, r0, r1), t3 = hn::InterleaveUpper(d4, r2, r3);
        float* out = dst + i * kC + g;
        hn::StoreU(hn::ConcatLowerLower(d4, t1, t0), d4, out);
        hn::StoreU(hn::ConcatUpperUpper(d4, t1, t0), d4, out + kC);
        hn::StoreU(hn::ConcatLowerLower(d4, t3, t2), d4, out + 2 * kC);
        hn::StoreU(hn::ConcatUpperUpper(d4, t3, t2), d4, out + 3 * kC);
      }
  }
#endif
  for (; i < in; ++i)
    for (size_t c = 0; c < kC; ++c) dst[i * kC + c] = x[c * in + i];
}

// Calls f(std::integral_constant<size_t, kC>(), t) for the prefill tiles
// that cover rows [t0, t1), in order: kPrefillT rows while they last, then
// the leftovers in tiles of 8, 4, 2 and 1 (not one row at a time: a lone
// accumulator chain waits on every MulAdd's latency).
template <class F>
HWY_INLINE void ForEachTile(size_t t0, size_t t1, const F& f) {
  size_t t = t0;
  auto tiles = [&](auto rows) HWY_ATTR {
    if constexpr (decltype(rows)::value <= kPrefillT)
      for (; t + rows <= t1; t += rows) f(rows, t);
  };
  tiles(std::integral_constant<size_t, kPrefillT>());
  tiles(std::integral_constant<size_t, 8>());
  tiles(std::integral_constant<size_t, 4>());
  tiles(std::integral_constant<size_t, 2>());
  tiles(std::integral_constant<size_t, 1>());
}

template <typename TW>
void PanelRowsT(const float* x, size_t T, const TW* W, size_t in, size_t out, size_t p0, size_t p1, float* y) {
  const size_t stride = in * float_panels::kRows;
  auto valid = [&](size_t p) { return out - p * float_panels::kRows; };
  size_t p = p0;
  if (T == 1) {
    // Rows of up to 4096 inputs go one panel at a time: a single stream
    // through memory, with the activations (at most 16 KiB) staying in L1
    // beside it. Streaming from DRAM on 2 threads (f32, bf16 and f16 panels)
    // this measured 0-40% faster than several panels at once for 96-2048
    // inputs (LoRA factors, 0.1B-1.5B products), the same at 4096 and 6%
    // slower at 8192. Longer rows take several panels at once (their tile's
    // panels share each activation read; independent accumulators hide the
    // MulAdd latency), leftover pairs too. (From cache, f16 panels run up to
    // 15% slower one at a time: decode reads its weights from DRAM.)
    if (in > kSinglePanelDecodeInputs) {
      for (; p + kDecodePanels <= p1; p += kDecodePanels)
        PanelTile<kDecodePanels, 1>(W + p * stride, stride, x, in, y + p * float_panels::kRows, out, valid(p));
      if constexpr (kDecodePanels > 2) {
        for (; p + 2 <= p1; p += 2)
          PanelTile<2, 1>(W + p * stride, stride, x, in, y + p * float_panels::kRows, out, valid(p));
      }
    }
    for (; p < p1; ++p) PanelTile<1, 1>(W + p * stride, stride, x, in, y + p * float_panels::kRows, out, valid(p));
    return;
  }
  // Activation rows in chunks of ~1 MiB, read from L2/L3 once per panel,
  // while each panel stays in L1/L2 for all the chunk's tiles. Each tile's
  // rows are first interleaved: kPrefillT rows `in` apart (a power of two in
  // the models) would share a few cache sets.
  const size_t t_chunk = std::max<size_t>(kPrefillT, (size_t(1) << 18) / in / kPrefillT * kPrefillT);
  thread_local std::vector<float> xt;
  if (xt.size() < t_chunk * in) xt.resize(t_chunk * in);
  for (size_t t0 = 0; t0 < T; t0 += t_chunk) {
    const size_t t1 = std::min(T, t0 + t_chunk);
    float* dst = xt.data();
    ForEachTile(t0, t1, [&](auto rows, size_t t) HWY_ATTR {
      Interleave<decltype(rows)::value>(x + t * in, in, dst);
      dst += rows * in;
    });
    for (p = p0; p < p1; ++p) {
      const TW* w = W + p * stride;
      float* yp = y + p * float_panels::kRows;
      const float* xr = xt.data();
      ForEachTile(t0, t1, [&](auto rows, size_t r) HWY_ATTR {
        PanelTile<1, decltype(rows)::value>(w, stride, xr, in, yp + r * out, out, valid(p));
        xr += rows * in;
      });
    }
  }
}

// The decode tile without the zero activations: kP panels, the nnz columns
// idx[] (increasing) times val[]. The same MulAdd sequence as PanelTile<kP, 1>
// minus the terms whose activation is zero.
template <size_t kP, typename TW>
HWY_INLINE void SparseTile(const TW* HWY_RESTRICT w, size_t panel_stride, const uint32_t* HWY_RESTRICT idx,
                           const float* HWY_RESTRICT val, size_t nnz, float* HWY_RESTRICT y, size_t valid) {
  const DF d;
  const size_t L = hn::Lanes(d);
  VF acc[kP][kPanelVecs];
  for (size_t p = 0; p < kP; ++p)
    for (size_t v = 0; v < kPanelVecs; ++v) acc[p][v] = hn::Zero(d);
  for (size_t n = 0; n < nnz; ++n) {
    const size_t col = size_t(idx[n]) * float_panels::kRows;
    const VF xb = hn::Set(d, val[n]);
    for (size_t p = 0; p < kP; ++p)
      for (size_t v = 0; v < kPanelVecs; ++v)
        acc[p][v] = hn::MulAdd(LoadF32(d, w + p * panel_stride + col + v * L), xb, acc[p][v]);
  }
  for (size_t p = 0; p < kP; ++p)
    for (size_t v = 0; v < kPanelVecs; ++v) StoreRows(d, acc[p][v], p * float_panels::kRows + v * L, valid, y);
}

template <typename TW>
void SparsePanelRowsT(const uint32_t* idx, const float* val, size_t nnz, const TW* W, size_t in, size_t out,
                      size_t p0, size_t p1, float* y) {
  const size_t stride = in * float_panels::kRows;
  size_t p = p0;
  for (; p + kDecodePanels <= p1; p += kDecodePanels)
    SparseTile<kDecodePanels>(W + p * stride, stride, idx, val, nnz, y + p * float_panels::kRows,
                              out - p * float_panels::kRows);
  for (; p < p1; ++p)
    SparseTile<1>(W + p * stride, stride, idx, val, nnz, y + p * float_panels::kRows, out - p * float_panels::kRows);
}

void SparsePanelRows(const uint32_t* idx, const float* val, size_t nnz, const Matrix& W, size_t p0, size_t p1,
                     float* y) {
  if constexpr (!kPanelsRun) return;
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  switch (float_panels::panel_dtype(W)) {
    case DType::F32:
      return SparsePanelRowsT(idx, val, nnz, static_cast<const float*>(W.packed), in, out, p0, p1, y);
    case DType::F16:
      return SparsePanelRowsT(idx, val, nnz, static_cast<const hwy::float16_t*>(W.packed), in, out, p0, p1, y);
    case DType::BF16:
      return SparsePanelRowsT(idx, val, nnz, static_cast<const hwy::bfloat16_t*>(W.packed), in, out, p0, p1, y);
    default: return;
  }
}

// Output rows of panels [p0, p1) of y = x W^T from W.packed.
void PanelRows(const float* x, size_t T, const Matrix& W, size_t p0, size_t p1, float* y) {
  if constexpr (!kPanelsRun) return;  // never packed for such a target (float_panels::runs())
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  switch (float_panels::panel_dtype(W)) {
    case DType::F32: return PanelRowsT(x, T, static_cast<const float*>(W.packed), in, out, p0, p1, y);
    case DType::F16: return PanelRowsT(x, T, static_cast<const hwy::float16_t*>(W.packed), in, out, p0, p1, y);
    case DType::BF16: return PanelRowsT(x, T, static_cast<const hwy::bfloat16_t*>(W.packed), in, out, p0, p1, y);
    default: return;
  }
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <vector>

#include "ops/bf16_dot.h"
#include "util/dtype.h"
#include "util/thread_pool.h"

namespace aviary::ops::float_panels {

HWY_EXPORT(PanelsRun);
HWY_EXPORT(PanelRows);
HWY_EXPORT(SparsePanelRows);

namespace {
size_t panel_count(const Matrix& W) { return (size_t(W.rows) + kRows - 1) / kRows; }
// Below this many multiply-adds a product runs on the calling thread alone.
constexpr int64_t kParallelMacs = int64_t(1) << 17;
}  // namespace

bool runs() { return HWY_DYNAMIC_DISPATCH(PanelsRun)(); }

namespace {
// Whether f32 bits are a bf16 value: the low 16 mantissa bits are zero.
bool is_bf16_value(uint32_t bits) { return (bits & 0xFFFFu) == 0; }
}  // namespace

bool holds_bf16_values(const Matrix& W) {
  if (W.dtype != DType::F32) return false;
  std::atomic<bool> all{true};
  default_pool().parallel_for(W.rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1 && all.load(std::memory_order_relaxed); ++r) {
      const auto* row = reinterpret_cast<const uint32_t*>(W.row_ptr(r));
      uint32_t low = 0;  // OR of every low half: one branch a row
      for (int64_t i = 0; i < W.cols; ++i) low |= row[i];
      if (!is_bf16_value(low)) all.store(false, std::memory_order_relaxed);
    }
  });
  return all.load();
}

size_t packed_bytes(const Matrix& W) {
  const size_t element = holds_bf16_values(W) ? 2 : dtype_size(W.dtype);
  return panel_count(W) * kRows * size_t(W.cols) * element;
}

namespace {
// Panels [p0, p1) of W (stored elements of type S) into dst as elements of
// type E, each convert(stored); padding rows zeroed.
template <typename E, typename S = E, typename Convert = E (*)(S)>
void pack_panels(const Matrix& W, E* dst, size_t p0, size_t p1, Convert convert = [](S v) { return E(v); }) {
  const size_t in = size_t(W.cols), rows = size_t(W.rows);
  for (size_t p = p0; p < p1; ++p) {
    E* panel = dst + p * kRows * in;
    for (size_t r = 0; r < kRows; ++r) {
      const size_t o = p * kRows + r;
      if (o >= rows) {
        for (size_t i = 0; i < in; ++i) panel[i * kRows + r] = E{};
        continue;
      }
      const S* row = reinterpret_cast<const S*>(W.row_ptr(int64_t(o)));
      for (size_t i = 0; i < in; ++i) panel[i * kRows + r] = convert(row[i]);  // a panel (<= 1 MiB) stays in L2 meanwhile
    }
  }
}
}  // namespace

namespace {
// Panel p of W (stored elements of type S: f16 bits or f32 bits) as bf16,
// the high halves of the values' fp32 bits; false when a value is not a bf16
// value (the panel then unfinished). f16 Inf and NaN keep f16's layout.
template <typename S>
bool pack_panel_as_bf16(const Matrix& W, uint16_t* dst, size_t p) {
  bool exact = true;
  pack_panels<uint16_t, S>(W, dst, p, p + 1, [&](S stored) {
    uint32_t bits = stored;
    if constexpr (sizeof(S) == 2) {
      bits = std::bit_cast<uint32_t>(f16_to_f32(stored));
      exact = exact && (stored & 0x7C00u) != 0x7C00u;
    }
    exact = exact && is_bf16_value(bits);
    return uint16_t(bits >> 16);
  });
  return exact;
}

// All of W's panels as bf16, in one pass over W, if every value is a bf16
// value; false (dst then to be rewritten) at the first panel that is not.
template <typename S>
bool pack_as_bf16(const Matrix& W, uint16_t* dst) {
  std::atomic<bool> exact{true};
  default_pool().parallel_for(int64_t(panel_count(W)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1 && exact.load(std::memory_order_relaxed); ++p)
      if (!pack_panel_as_bf16<S>(W, dst, size_t(p))) exact.store(false, std::memory_order_relaxed);
  });
  return exact.load();
}
}  // namespace

bool pack(const Matrix& W, uint8_t* dst) {
  // bf16 first: it succeeds for f32 weights exactly when holds_bf16_values
  // (so packed_bytes sized dst for bf16), and is the usual case for f16; a
  // failure costs a panel a thread, then the stored type is packed over it.
  auto* dst16 = reinterpret_cast<uint16_t*>(dst);
  if (W.dtype == DType::F32 && pack_as_bf16<uint32_t>(W, dst16)) return true;
  if (W.dtype == DType::F16 && pack_as_bf16<uint16_t>(W, dst16)) return true;
  default_pool().parallel_for(int64_t(panel_count(W)), [&](int64_t p0, int64_t p1) {
    if (dtype_size(W.dtype) == 4)
      pack_panels(W, reinterpret_cast<uint32_t*>(dst), size_t(p0), size_t(p1));
    else
      pack_panels(W, dst16, size_t(p0), size_t(p1));
  });
  return false;
}

namespace {
using RowsKernel = void (*)(const float*, size_t, const Matrix&, size_t, size_t, float*);

// bf16 panels on an AVX512-BF16 CPU (ops/bf16_dot.h).
// f32 weights stay on fp32 activations even in bf16 panels: their products
// are then those of f32 panels bit for bit, as an f32 file asks.
bool takes_bf16_dot(const Matrix& W) {
  return panel_dtype(W) == DType::BF16 && W.dtype != DType::F32 && bf16dot::enabled();
}

void bf16_dot_rows(const float* x, size_t T, const Matrix& W, size_t p0, size_t p1, float* y) {
  bf16dot::panel_rows(x, T, static_cast<const uint16_t*>(W.packed), size_t(W.cols), size_t(W.rows), p0, p1, y);
}

RowsKernel rows_kernel(const Matrix& W) {
  return takes_bf16_dot(W) ? &bf16_dot_rows : &HWY_DYNAMIC_DISPATCH(PanelRows);
}
}  // namespace

void linear(const float* x, int64_t T, const Matrix& W, float* y) {
  const RowsKernel kernel = rows_kernel(W);
  const int64_t panels = int64_t(panel_count(W));
  if (W.rows * W.cols * T < kParallelMacs) return kernel(x, size_t(T), W, 0, size_t(panels), y);
  default_pool().parallel_for(
      panels, [&](int64_t begin, int64_t end) { kernel(x, size_t(T), W, size_t(begin), size_t(end), y); },
      split_for(T));
}

void rows(const float* x, int64_t T, const Matrix& W, size_t p0, size_t p1, float* y) {
  rows_kernel(W)(x, size_t(T), W, p0, p1, y);
}

namespace {
void bf16_sparse_linear(const float* h, const Matrix& W, float* y) {
  const size_t F = size_t(W.cols);
  thread_local std::vector<uint32_t> cols, xp;
  if (cols.size() < (F + 1) / 2) {
    cols.resize((F + 1) / 2);
    xp.resize((F + 1) / 2);
  }
  const size_t n = bf16dot::sparse_pairs(h, F, cols.data(), xp.data());
  const auto* panels = static_cast<const uint16_t*>(W.packed);
  const int64_t count = int64_t(panel_count(W));
  auto run = [&](int64_t p0, int64_t p1) {
    bf16dot::sparse_panel_rows(cols.data(), xp.data(), n, panels, F, size_t(W.rows), size_t(p0), size_t(p1), y);
  };
  if (int64_t(2 * n) * W.rows < kParallelMacs) return run(0, count);
  default_pool().parallel_for(count, run, Split::Balanced);
}
}  // namespace

void sparse_linear(const float* h, const Matrix& W, float* y) {
  if (takes_bf16_dot(W)) return bf16_sparse_linear(h, W, y);
  const size_t F = size_t(W.cols);
  // Per calling thread: several sequences may decode at once on different threads.
  thread_local std::vector<uint32_t> idx;
  thread_local std::vector<float> val;
  if (idx.size() < F) {
    idx.resize(F);
    val.resize(F);
  }
  // Branch-free gather: with zeros scattered at random a branch would
  // mispredict on about every other activation.
  size_t nnz = 0;
  for (size_t i = 0; i < F; ++i) {
    idx[nnz] = uint32_t(i);
    val[nnz] = h[i];
    nnz += h[i] != 0.f;
  }
  const auto kernel = &HWY_DYNAMIC_DISPATCH(SparsePanelRows);
  const int64_t panels = int64_t(panel_count(W));
  const uint32_t* ip = idx.data();
  const float* vp = val.data();
  if (int64_t(nnz) * W.rows < kParallelMacs) return kernel(ip, vp, nnz, W, 0, size_t(panels), y);
  default_pool().parallel_for(
      panels, [&](int64_t begin, int64_t end) { kernel(ip, vp, nnz, W, size_t(begin), size_t(end), y); },
      Split::Balanced);
}

}  // namespace aviary::ops::float_panels

#endif  // HWY_ONCE
