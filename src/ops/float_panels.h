// f32 / f16 / bf16 weights in panels: the layout linear_pack (ops/linear.h)
// gives float matrices. Panel p holds rows [32p, 32p + 32) column by column:
// element (r, i) at panel p, offset i * 32 + (r - 32p), in the stored type
// (rows past the matrix are zero), or bf16 for bf16-valued f16 weights
// (pack()). The same number of bytes as the matrix, re-laid.
//
// The kernels put the 32 rows of a panel in vector lanes and broadcast one
// activation per column: every output is one fp32 lane fed with MulAdd over
// i in increasing order, whatever the tile, T or thread, so decode and
// prefill give the same value bit for bit, no lanes are summed horizontally,
// and a prefill tile reuses each weight vector for a dozen activation rows.
// Decode reads each panel as one contiguous stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/matrix.h"
#include "util/dtype.h"

namespace aviary::ops::float_panels {

constexpr size_t kRows = 32;

// Whether the kernels of this CPU's SIMD target run panels (fixed-width
// vectors: every x86 and NEON target; scalable ones multiply W as stored).
bool runs();

// Whether W is f32 and every value of it is a bf16 value (the low 16 bits
// zero), as in files that store the official bf16 checkpoints' tensors as
// f32: llama.cpp's GGUF files keep RWKV-7's LoRA factors so. A scan of W.
bool holds_bf16_values(const Matrix& W);

// Bytes of W's panels: half of W's own for f32 weights that hold bf16 values.
size_t packed_bytes(const Matrix& W);

// Writes W's panels to dst (packed_bytes(W) bytes) in W's own type, except
// weights that are all bf16 values, which become bf16 panels, the same
// values, and pack returns true (linear_pack records it in
// W.packed_as_bf16):
// - f16 weights converted from the official bf16 checkpoints: decode
//   converts bf16 with a shift instead of vcvtph2ps, and ops/bf16_dot.h
//   applies (activations rounded to bf16 as for bf16 weights);
// - f32 weights (holds_bf16_values): half the bytes to stream, and the
//   activations stay fp32, so the products equal those of f32 panels bit for
//   bit.
bool pack(const Matrix& W, uint8_t* dst);

// The element type of W's panels.
inline DType panel_dtype(const Matrix& W) { return W.packed_as_bf16 ? DType::BF16 : W.dtype; }

// y = x W^T from W.packed (x: [T, W.cols], y: [T, W.rows]), on the default pool.
void linear(const float* x, int64_t T, const Matrix& W, float* y);

// Output rows of panels [p0, p1) of y = x W^T from W.packed, on the calling
// thread: for callers that share out the panels of several products at once
// (ops/linear.h linear_many).
void rows(const float* x, int64_t T, const Matrix& W, size_t p0, size_t p1, float* y);

// y = W h from W.packed skipping the zeros of h (h: [W.cols], y: [W.rows]):
// each output is PanelTile's sum minus its zero terms, so it equals
// linear(h, 1, W) bit for bit (up to the sign of an all-zero sum, and unless W
// holds Inf/NaN where h is zero).
void sparse_linear(const float* h, const Matrix& W, float* y);

}  // namespace aviary::ops::float_panels
