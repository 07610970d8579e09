// The RWKV-5.2 / RWKV-6 recurrence, vectorised over the value channels of
// each head and shared out over the heads (each thread keeps its heads'
// states in its own cache for all T tokens). Highway dynamic dispatch; the
// plain loops are reference::wkv5_sequence.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/wkv5.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

// Per-token vectors of one head, each N long.
struct Wkv5Token {
  const float *r, *k, *v, *w;
};

// Value channels j .. j + kV*L of one head (with kPartial: one vector of
// n < L channels), one token, S being N x N [key i][value j]:
//   y[j] = bonus * v[j] + sum_i r[i] S[i][j];   S[i][j] = k[i] v[j] + w[i] S[i][j]
template <size_t kV, bool kPartial>
HWY_INLINE void Wkv5Cols(float* HWY_RESTRICT S, size_t N, size_t j, size_t n, const Wkv5Token& p, VF bonus,
                         float* HWY_RESTRICT y) {
  static_assert(!kPartial || kV == 1, "a partial vector comes alone");
  const DF d;
  const size_t L = hn::Lanes(d);
  VF vv[kV], acc[kV];
  for (size_t q = 0; q < kV; ++q) {
    vv[q] = LoadChunk<kPartial>(d, p.v + j + q * L, n);
    acc[q] = hn::Zero(d);
  }
  for (size_t i = 0; i < N; ++i) {
    float* row = S + i * N + j;
    const VF ri = hn::Set(d, p.r[i]), ki = hn::Set(d, p.k[i]), wi = hn::Set(d, p.w[i]);
    for (size_t q = 0; q < kV; ++q) {
      const VF s = LoadChunk<kPartial>(d, row + q * L, n);
      acc[q] = hn::MulAdd(ri, s, acc[q]);
      StoreChunk<kPartial>(d, hn::MulAdd(wi, s, hn::Mul(ki, vv[q])), row + q * L, n);
    }
  }
  for (size_t q = 0; q < kV; ++q) StoreChunk<kPartial>(d, hn::MulAdd(bonus, vv[q], acc[q]), y + j + q * L, n);
}

// sum_i r[i] u[i] k[i], broadcast: the weight of this token's own k v^T in y.
HWY_INLINE VF Wkv5Bonus(size_t N, const Wkv5Token& p, const float* HWY_RESTRICT u) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t tail = N % L, full = N - tail;
  VF acc = hn::Zero(d);
  for (size_t i = 0; i < full; i += L)
    acc = hn::MulAdd(hn::Mul(hn::LoadU(d, p.r + i), hn::LoadU(d, u + i)), hn::LoadU(d, p.k + i), acc);
  if (tail != 0)
    acc = hn::MulAdd(hn::Mul(LoadPartialF32(d, p.r + full, tail), LoadPartialF32(d, u + full, tail)),
                     LoadPartialF32(d, p.k + full, tail), acc);
  return hn::SumOfLanes(d, acc);
}

// Heads [h0, h1), every token in order.
void Wkv5Heads(float* S, size_t H, size_t N, size_t T, const float* r, const float* k, const float* v,
               const float* w, size_t w_stride, const float* u, float* y, size_t h0, size_t h1) {
  constexpr size_t kV = 4;
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t C = H * N, tail = N % L, full = N - tail;
  for (size_t h = h0; h < h1; ++h) {
    float* Sh = S + h * N * N;
    for (size_t t = 0; t < T; ++t) {
      const size_t o = t * C + h * N;
      const Wkv5Token p{r + o, k + o, v + o, w + t * w_stride + h * N};
      const VF bonus = Wkv5Bonus(N, p, u + h * N);
      size_t j = 0;
      for (; j + kV * L <= full; j += kV * L) Wkv5Cols<kV, false>(Sh, N, j, L, p, bonus, y + o);
      for (; j < full; j += L) Wkv5Cols<1, false>(Sh, N, j, L, p, bonus, y + o);
      if (tail != 0) Wkv5Cols<1, true>(Sh, N, full, tail, p, bonus, y + o);
    }
  }
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include "ops/reference.h"
#include "ops/simd.h"
#include "ops/wkv5.h"
#include "util/thread_pool.h"

namespace aviary::ops {

HWY_EXPORT(Wkv5Heads);

void wkv5_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* k,
                   const float* v, const float* w, int64_t w_stride, const float* u, float* y) {
  if (detail::use_reference()) return reference::wkv5_sequence(S, H, N, T, r, k, v, w, w_stride, u, y);
  if (H <= 0 || N <= 0 || T <= 0) return;
  const auto kernel = &HWY_DYNAMIC_DISPATCH(Wkv5Heads);
  const auto run = [&](int64_t h0, int64_t h1) {
    kernel(S, size_t(H), size_t(N), size_t(T), r, k, v, w, size_t(w_stride), u, y, size_t(h0), size_t(h1));
  };
  // Below about 16K state updates a hand-off would cost more than it saves
  // (the pool's workers spin between the jobs of a decode step, so handing
  // out even one token's heads pays from about 256 channels up).
  if (H * N * N * T < (int64_t(1) << 14)) return run(0, H);
  default_pool().parallel_for(H, run);
}

}  // namespace aviary::ops

#endif  // HWY_ONCE
