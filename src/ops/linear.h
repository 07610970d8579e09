// Matrix products of T activation rows with a stored weight matrix.
// T = 1 is the decode (matrix-vector) case; T > 1 is prefill, where each
// weight row is converted once and used for every activation row.
#pragma once

#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops {

// y[t, o] = sum_i W[o, i] * x[t, i]   (W stored [out, in], as nn.Linear keeps it)
// x: [T, W.cols], y: [T, W.rows]
void linear(const float* x, int64_t T, const Matrix& W, float* y);

// y[t, o] = sum_i x[t, i] * W[i, o]   (W stored [in, out], as the RWKV-7 LoRA factors are)
// x: [T, W.rows], y: [T, W.cols]
void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y);

// Plain dot product of two fp32 vectors.
float dot(const float* a, const float* b, int64_t n);

}  // namespace aviary::ops
