// Element-wise helpers shared by the RWKV blocks (fp32).
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/activation.h"  // the vectorised sigmoid/tanh/exp/relu^2 over arrays

namespace aviary::ops {

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// Token shift: out = x + (prev - x) * mix, the lerp between this token and the last.
inline void token_shift_mix(const float* x, const float* prev, const float* mix, int64_t n,
                            float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] + (prev[i] - x[i]) * mix[i];
}

inline void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

inline void mul_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
}

}  // namespace aviary::ops
