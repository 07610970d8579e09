// The value product of a squared-ReLU feed-forward, skipping the zero
// activations. relu(k)^2 is exactly zero for many channels (about half on
// random weights, most of them on trained models), so in decode (one row)
// only the rows of the transposed value matrix whose activation is nonzero
// need to be read. They are contiguous only in the [F, C] layout, hence the
// transposed copy the model makes at load time (transpose_copy).
//
// Summation order: y[c] is one fp32 lane fed with MulAdd(h[i], Wt[i, c]) over
// the nonzero i in increasing order, starting from zero: the same order as
// linear_in_out (ops/linear.h) over all i, where each zero term adds exactly
// zero. So on one SIMD variant the result equals linear_in_out(h, 1, Wt) (up
// to the sign of an all-zero sum, and unless Wt holds Inf/NaN in a skipped
// row), whatever the thread count, on every run.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/matrix.h"

namespace aviary::ops {

// y[c] = sum over i with h[i] != 0 of h[i] * Wt[i, c], for c in [0, Wt.cols).
// h: [F], Wt: [F, C] stored f32, f16 or bf16 (a block-quantized Wt, or
// Wt.rows != F, throws aviary::Error). Columns are shared out over the
// default thread pool when the work is large enough.
void sparse_rows_sum(const float* h, int64_t F, const Matrix& Wt, float* y);

// How many of the n values are not zero (NaN counts as nonzero).
int64_t count_nonzero(const float* h, int64_t n);

// A matrix that owns its bytes (the transposed copies).
struct OwnedMatrix {
  std::unique_ptr<uint8_t[]> bytes;
  Matrix matrix;  // points into `bytes`
};

// W^T in W's own element type: [W.cols, W.rows]. f32, f16 or bf16 only
// (transposing block-quantized rows would mean re-quantizing them: aviary::Error).
OwnedMatrix transpose_copy(const Matrix& W);

namespace reference {
// The plain scalar loop that defines sparse_rows_sum.
void sparse_rows_sum(const float* h, int64_t F, const Matrix& Wt, float* y);
}  // namespace reference

}  // namespace aviary::ops
