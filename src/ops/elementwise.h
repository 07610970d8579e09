// Element-wise helpers shared by the RWKV blocks (fp32). The array ones are
// vectorised per SIMD target (ops/activation.cpp): the model layer is built
// for plain x86-64, where the loops inlined here ran four lanes wide.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/activation.h"  // the vectorised sigmoid/tanh/exp/relu^2 over arrays

namespace aviary::ops {

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// Token shift: out = x + (prev - x) * mix, the lerp between this token and the
// last (one fused multiply-add where the target has it). out may be x or prev.
void token_shift_mix(const float* x, const float* prev, const float* mix, int64_t n, float* out);

// y += x.
void add_inplace(float* y, const float* x, int64_t n);

// y *= x.
void mul_inplace(float* y, const float* x, int64_t n);

namespace reference {
void token_shift_mix(const float* x, const float* prev, const float* mix, int64_t n, float* out);
void add_inplace(float* y, const float* x, int64_t n);
void mul_inplace(float* y, const float* x, int64_t n);
}  // namespace reference

}  // namespace aviary::ops
