// The RWKV-7 WKV recurrence ("generalised delta rule") for one layer.
//
// Per head h the state S is N x N, indexed S[i = value channel][j = key channel]
// (the official pip layout). For each token:
//   S <- S * diag(w) + (S @ -kk) (kk * a)^T + v k^T
//   y  = S @ r
// where w is the decay already in (0, 1).
//
// Vectorised over the key channels (SIMD variant chosen at run time, see
// ops/simd.h) and shared out over the heads on the default thread pool.
#pragma once

#include <cstdint>

namespace aviary::ops {

// One token. All vectors are [H * N]; S is [H, N, N] and is updated in place.
void wkv7_step(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y);

// wkv7_step for heads [h0, h1) only, on the calling thread: for callers that
// share a decode step's heads out together with their other per-head work.
void wkv7_step_heads(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
                     const float* v, const float* kk, const float* a, float* y, int64_t h0, int64_t h1);

// T tokens in order; every input is [T, H * N] row-major and y is [T, H * N].
void wkv7_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* w,
                   const float* k, const float* v, const float* kk, const float* a, float* y);

}  // namespace aviary::ops
