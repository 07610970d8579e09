// Matrix products of T activation rows with a stored weight matrix.
// T = 1 is the decode (matrix-vector) case, which reads each weight once;
// T > 1 is prefill, a blocked product that reads each weight row once per
// block of activation rows. Weights are converted to fp32 in registers.
//
// The SIMD variant is chosen at run time (ops/simd.h); the output rows are
// shared out over the default thread pool (util/thread_pool.h). Row t of a
// product with T rows equals, bit for bit, the product of row t alone. On a
// CPU with AVX512-BF16, products of bf16 weights (and of f16 weights that
// are all bf16 values) round the activations to bf16 (ops/bf16_dot.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ops/matrix.h"

namespace aviary::ops {

// y[t, o] = sum_i W[o, i] * x[t, i]   (W stored [out, in], as nn.Linear keeps it)
// x: [T, W.cols], y: [T, W.rows]. W may be any DType, block-quantized ones
// (ops/quant.h) included; their W.cols must be a whole number of blocks,
// else aviary::Error.
void linear(const float* x, int64_t T, const Matrix& W, float* y);

// Some kernels multiply faster from a copy of W re-laid for them (Q8_0/Q4_0
// panels on AVX512-VNNI CPUs: ops/quant_dot_vnni.h; float panels:
// ops/float_panels.h), the same size as W, or half of it for f32 weights that
// are all bf16 values (held as bf16, the same numbers). The
// model makes it once at load: linear_pack_bytes(W) is its size, 0 when this
// CPU's kernels read W as stored; linear_pack(W, dst) writes it (else throws
// aviary::Error) and sets W.packed = dst (and W.packed_as_bf16). linear()
// reads W.packed when set and its kernel runs, else W.data, with the same
// results either way (up to fp32 summation order, as between SIMD variants),
// except that bf16 panels may round activations to bf16 (ops/bf16_dot.h).
size_t linear_pack_bytes(const Matrix& W);
void linear_pack(Matrix& W, uint8_t* dst);

// Output rows [r0, r1) of y = x W^T (y: [T, W.rows], its other rows left
// alone), on the calling thread: for callers that share out a product's rows
// together with other work on the same channels. Each row equals linear()'s
// bit for bit where W's float panels hold rows [r0, r1) whole (r0, and r1
// unless it is W.rows, multiples of float_panels::kRows, 32); otherwise the
// rows are multiplied as a matrix of their own.
void linear_rows(const float* x, int64_t T, const Matrix& W, int64_t r0, int64_t r1, float* y);

// Several independent linear() products (LinearJob, ops/matrix.h) in one
// hand-out to the thread pool: the small RWKV-7 LoRA factors, each too small
// to share out alone, and in decode the other products of the same inputs
// (one hand-off instead of several, each thread streaming its share of all
// the weights). Matrices in float panels take part always, Q8_0/Q4_0 VNNI
// panels in decode; large prefill products and the others run one after
// another through linear(). The work is split by cost (bytes of the panels
// times rows) into groups of panels and blocks of rows, not by job, so threads
// finish together. Every output equals what linear() gives for its job.
void linear_many(std::span<const LinearJob> jobs);

// y[t, o] = sum_i x[t, i] * W[i, o]   (W stored [in, out], as the RWKV-6 LoRA factors are)
// x: [T, W.rows], y: [T, W.cols]. f32, f16 or bf16 only: a block-quantized W
// throws aviary::Error.
void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y);

// Dot product of two fp32 vectors.
float dot(const float* a, const float* b, int64_t n);

// y += alpha * x over n elements.
void axpy(float alpha, const float* x, float* y, int64_t n);

}  // namespace aviary::ops
