// The RWKV-7 recurrence, vectorised over the key channels of each state row
// and shared out over the heads (each thread keeps its heads' states in its
// own cache for all T tokens). Highway dynamic dispatch; the plain loops are
// reference::wkv7_sequence.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/wkv7.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

// Per-token vectors of one head, each N long.
struct Wkv7Token {
  const float *r, *w, *k, *v, *kk, *a;
};

// sa[q] = -(S[i_q] . kk) for kRows state rows (full vectors, then the tail).
template <size_t kRows>
HWY_INLINE void Wkv7RowsTimesKk(float* const* row, size_t N, const float* HWY_RESTRICT kk, VF* sa) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t tail = N % L, full = N - tail;
  VF acc[kRows];
  for (size_t q = 0; q < kRows; ++q) acc[q] = hn::Zero(d);
  for (size_t j = 0; j < full; j += L) {
    const VF kkv = hn::LoadU(d, kk + j);
    for (size_t q = 0; q < kRows; ++q) acc[q] = hn::MulAdd(hn::LoadU(d, row[q] + j), kkv, acc[q]);
  }
  if (tail != 0) {
    const VF kkv = LoadPartialF32(d, kk + full, tail);
    for (size_t q = 0; q < kRows; ++q) acc[q] = hn::MulAdd(LoadPartialF32(d, row[q] + full, tail), kkv, acc[q]);
  }
  for (size_t q = 0; q < kRows; ++q) sa[q] = hn::Neg(hn::SumOfLanes(d, acc[q]));
}

// Key channels j .. j+L (or the last n < L with kPartial) of kRows rows:
// S[i] = S[i] * w + sa * (kk * a) + v[i] * k, and out[q] += S[i] * r.
template <size_t kRows, bool kPartial>
HWY_INLINE void Wkv7Chunk(float* const* row, size_t j, size_t n, const Wkv7Token& p, const VF* sa,
                          const VF* vi, VF* out) {
  const DF d;
  const VF w = LoadChunk<kPartial>(d, p.w + j, n), k = LoadChunk<kPartial>(d, p.k + j, n);
  const VF r = LoadChunk<kPartial>(d, p.r + j, n);
  const VF kka = hn::Mul(LoadChunk<kPartial>(d, p.kk + j, n), LoadChunk<kPartial>(d, p.a + j, n));
  for (size_t q = 0; q < kRows; ++q) {
    const VF s = hn::MulAdd(LoadChunk<kPartial>(d, row[q] + j, n), w, hn::MulAdd(sa[q], kka, hn::Mul(vi[q], k)));
    StoreChunk<kPartial>(d, s, row[q] + j, n);
    out[q] = hn::MulAdd(s, r, out[q]);
  }
}

// Rows i0 .. i0+kRows-1 of one head's state S (N x N, [value i][key j]), one token.
template <size_t kRows>
HWY_INLINE void Wkv7Rows(float* HWY_RESTRICT S, size_t N, size_t i0, const Wkv7Token& p, float* HWY_RESTRICT y) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t tail = N % L, full = N - tail;
  float* row[kRows];
  VF sa[kRows], vi[kRows], out[kRows];
  for (size_t q = 0; q < kRows; ++q) {
    row[q] = S + (i0 + q) * N;
    vi[q] = hn::Set(d, p.v[i0 + q]);
    out[q] = hn::Zero(d);
  }
  Wkv7RowsTimesKk<kRows>(row, N, p.kk, sa);
  for (size_t j = 0; j < full; j += L) Wkv7Chunk<kRows, false>(row, j, L, p, sa, vi, out);
  if (tail != 0) Wkv7Chunk<kRows, true>(row, full, tail, p, sa, vi, out);
  for (size_t q = 0; q < kRows; ++q) y[i0 + q] = Sum(d, out[q]);
}

// Heads [h0, h1), every token in order.
void Wkv7Heads(float* S, size_t H, size_t N, size_t T, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y, size_t h0, size_t h1) {
  constexpr size_t kRows = 4;
  const size_t C = H * N;
  for (size_t h = h0; h < h1; ++h) {
    float* Sh = S + h * N * N;
    for (size_t t = 0; t < T; ++t) {
      const size_t o = t * C + h * N;
      const Wkv7Token p{r + o, w + o, k + o, v + o, kk + o, a + o};
      size_t i = 0;
      for (; i + kRows <= N; i += kRows) Wkv7Rows<kRows>(Sh, N, i, p, y + o);
      for (; i < N; ++i) Wkv7Rows<1>(Sh, N, i, p, y + o);
    }
  }
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include "ops/reference.h"
#include "ops/simd.h"
#include "ops/wkv7.h"
#include "util/thread_pool.h"

namespace aviary::ops {

HWY_EXPORT(Wkv7Heads);

void wkv7_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* w,
                   const float* k, const float* v, const float* kk, const float* a, float* y) {
  if (detail::use_reference()) return reference::wkv7_sequence(S, H, N, T, r, w, k, v, kk, a, y);
  if (H <= 0 || N <= 0 || T <= 0) return;
  const auto kernel = &HWY_DYNAMIC_DISPATCH(Wkv7Heads);
  const auto run = [&](int64_t h0, int64_t h1) {
    kernel(S, size_t(H), size_t(N), size_t(T), r, w, k, v, kk, a, y, size_t(h0), size_t(h1));
  };
  // Below about 16K state updates a hand-off would cost more than it saves
  // (the pool's workers spin between the jobs of a decode step, so handing
  // out even one token's heads pays from about 256 channels up).
  if (H * N * N * T < (int64_t(1) << 14)) return run(0, H);
  default_pool().parallel_for(H, run);
}

void wkv7_step(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y) {
  wkv7_sequence(S, H, N, 1, r, w, k, v, kk, a, y);
}

}  // namespace aviary::ops

#endif  // HWY_ONCE
