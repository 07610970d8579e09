// Element-wise activations over fp32 arrays, vectorised per
// SIMD target (ops/simd.h) with Highway's polynomial exp/tanh (within a few
// ULP of libm); each element is computed alone, so a value does not depend on
// where in the array it lies (sequence mode equals token-by-token mode).
#pragma once

#include <cstdint>

namespace aviary::ops {

// y = 1 / (1 + exp(-y)).
void sigmoid_inplace(float* y, int64_t n);

// y = tanh(y).
void tanh_inplace(float* y, int64_t n);

// y = exp(scale * y); scale * y at most 88 (exp's fp32 range).
void exp_inplace(float* y, float scale, int64_t n);

// y = max(y, 0)^2, the RWKV channel-mix activation (branch-free: the signs
// are random, a branch per element would mispredict half the time).
void relu_squared_inplace(float* y, int64_t n);

namespace reference {
// The same with the C library's expf/tanhf, element by element.
void sigmoid_inplace(float* y, int64_t n);
void tanh_inplace(float* y, int64_t n);
void exp_inplace(float* y, float scale, int64_t n);
void relu_squared_inplace(float* y, int64_t n);
}  // namespace reference

}  // namespace aviary::ops
