// Integer dot products for Q8_0 and Q4_0 weights, as llama.cpp computes them:
// the activations are quantized to 8 bits per block of 32 (llama.cpp's q8_0:
// d = max|x| / 127 rounded to fp16, q = round(x / d)), each block's dot
// product of weight and activation integers is exact in int32, and only the
// per-block scaling d_w * d_x and the sum over blocks are floating point.
// Integer multiply-adds do twice the work per instruction of fp32 ones and
// skip the dequantisation, which makes decode of these types bandwidth-bound.
//
// The error this adds (activation rounding, relative ~1/254 per block) is of
// the order of the weights' own quantization error; every path that multiplies
// by a Q8_0/Q4_0 matrix (decode, prefill, batches, the reference) uses it, so
// row t of a T-row product still equals the product of row t alone, bit for bit.
#pragma once

#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops {

// Whether linear() multiplies weights of type t with q8-quantized activations.
constexpr bool uses_q8_activations(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

// One activation row quantized: n = 32 * blocks values as int16 (the values fit
// int8; int16 is the width the kernels multiply in) and one scale per block.
struct Q8ActivationsView {
  const int16_t* q;  // [T, n]
  const float* d;    // [T, n / 32]
};

// Quantizes T rows of n values (n a multiple of 32) into q[T * n] and
// d[T * n / 32]. Rounding is to nearest, ties to even; the scale is llama.cpp's
// (max|x| / 127, stored as the nearest fp16). Deterministic and the same on
// every SIMD target (it is plain IEEE arithmetic).
void quantize_activations(const float* x, int64_t T, int64_t n, int16_t* q, float* d);

namespace reference {
// The plain loops quantize_activations is held to, bit for bit.
void quantize_activations(const float* x, int64_t T, int64_t n, int16_t* q, float* d);
// y = x W^T for Q8_0 / Q4_0 W through quantize_activations, in plain loops.
void linear_q8(const float* x, int64_t T, const Matrix& W, float* y);
}  // namespace reference

}  // namespace aviary::ops
