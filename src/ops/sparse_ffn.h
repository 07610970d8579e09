// The value product of a squared-ReLU feed-forward, skipping the zero
// activations. relu(k)^2 is exactly zero for many channels (about half on
// random weights, most of them on trained models), so in decode (one row)
// only the weights of the nonzero activations need to be read. In the float
// panels (ops/float_panels.h) the 32 outputs of one input column are one
// contiguous 64- or 128-byte run, so skipping columns skips whole cache lines.
//
// Summation order: y[o] is one fp32 lane fed with MulAdd(W[o, i], h[i]) over
// the nonzero i in increasing order, starting from zero: the same order as
// linear() over the panels, where each zero term adds exactly zero. So the
// result equals linear(h, 1, W) (up to the sign of an all-zero sum, and unless
// W holds Inf/NaN where h is zero), whatever the thread count, on every run.
#pragma once

#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops {

// y[o] = sum over i with h[i] != 0 of W[o, i] * h[i], for o in [0, W.rows).
// h: [F] with F == W.cols; W stored f32, f16 or bf16 (a block-quantized W, or
// W.cols != F, throws aviary::Error). With W.packed (float panels) the
// panel kernel runs, shared out over the default pool; without, the
// reference loops.
void sparse_linear(const float* h, int64_t F, const Matrix& W, float* y);

// How many of the n values are not zero (NaN counts as nonzero).
int64_t count_nonzero(const float* h, int64_t n);

namespace reference {
// The plain loops over W.data that define sparse_linear.
void sparse_linear(const float* h, int64_t F, const Matrix& W, float* y);
}  // namespace reference

}  // namespace aviary::ops
