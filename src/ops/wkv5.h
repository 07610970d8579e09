// The RWKV-5.2 / RWKV-6 WKV recurrence for one layer.
//
// Per head h the state S is N x N, indexed S[i = key channel][j = value
// channel] (the official pip layout: the transpose of RWKV-7's). Per token:
//   a = k v^T;   y = r (u * a + S);   S = a + w * S
// with the bonus u and the decay w (already in (0, 1)) indexed by key channel.
//
// Vectorised over the value channels (SIMD variant chosen at run time, see
// ops/simd.h) and shared out over the heads on the default thread pool.
#pragma once

#include <cstdint>

namespace aviary::ops {

// T tokens: r, k, v are [T, H*N]; u is [H*N]; the decay w is [T, H*N] when
// w_stride = H*N (RWKV-6, data-dependent) or one [H*N] row for every token
// when w_stride = 0 (RWKV-5.2). S is [H, N, N], updated in place; y is [T, H*N].
void wkv5_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* k,
                   const float* v, const float* w, int64_t w_stride, const float* u, float* y);

}  // namespace aviary::ops
