// The RWKV-7 recurrence, vectorised over the key channels of each state row
// and shared out over the heads (each thread keeps its heads' states in its
// own cache). Highway dynamic dispatch; the plain loops are
// reference::wkv7_sequence.
#include <algorithm>

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

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// 16-lane x86 vectors: the row sums of 16 state rows at once. Summing each
// row's vector on its own (two per row and token) took half the recurrence's
// instructions; a transpose-and-add tree takes a quarter of them.

// Lane 4b + q of the result = lanes 4b..4b+3 of v[q] summed (128-bit block b
// of each input reduced, the four inputs' partial sums side by side).
HWY_INLINE __m512 SumBlocksOf4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)), _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
}

// Lane 4g + q of the result = the four blocks' lane q of p[g] summed: with
// p[g] from SumBlocksOf4 of rows 4g..4g+3, lane i is row i's whole sum.
HWY_INLINE __m512 SumAcrossBlocks(__m512 p0, __m512 p1, __m512 p2, __m512 p3) {
  constexpr int kEven = _MM_SHUFFLE(2, 0, 2, 0), kOdd = _MM_SHUFFLE(3, 1, 3, 1);
  const __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(p0, p1, kEven), _mm512_shuffle_f32x4(p0, p1, kOdd));
  const __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(p2, p3, kEven), _mm512_shuffle_f32x4(p2, p3, kOdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, kEven), _mm512_shuffle_f32x4(x, y, kOdd));
}

// Rows i0 .. i0+15 of one head's state for one token (N a multiple of 16):
// the arithmetic of Wkv7Rows, with the row sums taken 16 at a time.
HWY_INLINE void Wkv7Rows16(float* HWY_RESTRICT S, size_t N, size_t i0, const Wkv7Token& p, float* HWY_RESTRICT y) {
  float* row0 = S + i0 * N;
  __m512 part[4];
  for (size_t g = 0; g < 4; ++g) {  // sa = -(S[i] . kk), four rows at a time
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (size_t j = 0; j < N; j += 16) {
      const __m512 kk = _mm512_loadu_ps(p.kk + j);
      for (size_t q = 0; q < 4; ++q) acc[q] = _mm512_fmadd_ps(_mm512_loadu_ps(row0 + (4 * g + q) * N + j), kk, acc[q]);
    }
    part[g] = SumBlocksOf4(acc[0], acc[1], acc[2], acc[3]);
  }
  const __m512 sa = _mm512_sub_ps(_mm512_setzero_ps(), SumAcrossBlocks(part[0], part[1], part[2], part[3]));
  for (size_t g = 0; g < 4; ++g) {  // S[i] = S[i] * w + sa[i] * (kk * a) + v[i] * k; y[i] = S[i] . r
    __m512 sai[4], vi[4], out[4];
    for (size_t q = 0; q < 4; ++q) {
      sai[q] = _mm512_permutexvar_ps(_mm512_set1_epi32(int(4 * g + q)), sa);
      vi[q] = _mm512_set1_ps(p.v[i0 + 4 * g + q]);
      out[q] = _mm512_setzero_ps();
    }
    for (size_t j = 0; j < N; j += 16) {
      const __m512 w = _mm512_loadu_ps(p.w + j), k = _mm512_loadu_ps(p.k + j), r = _mm512_loadu_ps(p.r + j);
      const __m512 kka = _mm512_mul_ps(_mm512_loadu_ps(p.kk + j), _mm512_loadu_ps(p.a + j));
      for (size_t q = 0; q < 4; ++q) {
        float* s_at = row0 + (4 * g + q) * N + j;
        const __m512 s =
            _mm512_fmadd_ps(_mm512_loadu_ps(s_at), w, _mm512_fmadd_ps(sai[q], kka, _mm512_mul_ps(vi[q], k)));
        _mm512_storeu_ps(s_at, s);
        out[q] = _mm512_fmadd_ps(s, r, out[q]);
      }
    }
    part[g] = SumBlocksOf4(out[0], out[1], out[2], out[3]);
  }
  _mm512_storeu_ps(y + i0, SumAcrossBlocks(part[0], part[1], part[2], part[3]));
}
#endif

// Heads [h0, h1), every token in order: blocks of kTokenBlock tokens, each
// head through the whole block before the next. A head's inputs are C floats
// apart from token to token; going head by head over a whole 512-token chunk,
// six strided streams over a new page each token outran the prefetchers and
// the TLB (half the speed per token of T = 16). Within a block the heads read
// neighbouring lines of the same pages, and a head's state, loaded once per
// block, stays in L1. Each head still sees its tokens in order: the same
// arithmetic for any T.
void Wkv7Heads(float* S, size_t H, size_t N, size_t T, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y, size_t h0, size_t h1) {
  constexpr size_t kRows = 4, kTokenBlock = 16;
  const size_t C = H * N;
  for (size_t t0 = 0; t0 < T; t0 += kTokenBlock)
    for (size_t h = h0; h < h1; ++h) {
      float* Sh = S + h * N * N;
      for (size_t t = t0; t < std::min(T, t0 + kTokenBlock); ++t) {
        const size_t o = t * C + h * N;
        const Wkv7Token p{r + o, w + o, k + o, v + o, kk + o, a + o};
        size_t i = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
        if (N % 16 == 0)
          for (; i < N; i += 16) Wkv7Rows16(Sh, N, i, p, y + o);
#endif
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

void wkv7_step_heads(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
                     const float* v, const float* kk, const float* a, float* y, int64_t h0, int64_t h1) {
  if (N <= 0 || h0 >= h1) return;
  if (detail::use_reference()) {  // one token: heads [h0, h1) are a model of h1 - h0 heads of their own
    const int64_t o = h0 * N;
    return reference::wkv7_sequence(S + o * N, h1 - h0, N, 1, r + o, w + o, k + o, v + o, kk + o, a + o, y + o);
  }
  HWY_DYNAMIC_DISPATCH(Wkv7Heads)(S, size_t(H), size_t(N), 1, r, w, k, v, kk, a, y, size_t(h0), size_t(h1));
}

void wkv7_step(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y) {
  wkv7_sequence(S, H, N, 1, r, w, k, v, kk, a, y);
}

}  // namespace aviary::ops

#endif  // HWY_ONCE
