// Products of bf16 float panels with AVX512-BF16 (vdpbf16ps: 32 bf16
// products summed in pairs into 16 fp32 lanes per instruction, twice the
// multiply-adds of an fp32 FMA). On Zen 4/5 and Intel Cooper/Sapphire Lake
// and later this doubles the compute bound of prompt processing for bf16
// weights, and for f16 weights that bf16 holds exactly (every f16 file
// converted from the official bf16 checkpoints: float_panels::pack makes
// them bf16 panels).
//
// The price: activations are rounded to bf16 (to nearest even, a relative
// error of at most 2^-8 per element) before they meet these weights, as in
// llama.cpp's bf16 path (its f16 path rounds them to f16). Every product on
// such panels does it, decode, prefill and sparse alike, so every output is
// the same sequence of vdpbf16ps over the column pairs (0, 1), (2, 3), ...
// whatever T, tile or thread: sequence mode equals token by token, and a
// row of a batch equals the row alone, bit for bit. Against the official fp32
// numbers that puts bf16/f16 models at the README's bf16-engine tolerance
// (../shared/refdata) rather than fp32's. AVIARY_BF16_DOT=0 (or
// set_enabled(false)) keeps fp32 activations (the Highway kernels).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops::bf16dot {

// Whether the CPU has AVX512-BF16 (with F and BW) and the path is not turned
// off by AVIARY_BF16_DOT=0 or set_enabled(false).
bool enabled();

// For tests and comparisons: turn the path off (or back on, where supported).
void set_enabled(bool on);

// Output rows of panels [p0, p1) of y = bf16(x) W^T from bf16 float panels
// (float_panels.h layout, `in` = W.cols columns of 32 rows, `out` = W.rows;
// x: [T, in], y: [T, out]), on the calling thread. Only call when enabled().
void panel_rows(const float* x, size_t T, const uint16_t* panels, size_t in, size_t out, size_t p0, size_t p1,
                float* y);

// Sparse decode, in two steps. sparse_pairs lists the column pairs of h
// ([in]) with a nonzero element: cols[k] their first column (flags in bits 30
// and 31 mark a zero second and first element), xp[k] their bf16 pair; it
// returns the count (cols and xp: (in + 1) / 2 entries). sparse_panel_rows
// then gives the rows of panels [p0, p1) of y = bf16(h) W^T, reading only the
// columns of nonzero elements, equal bit for bit to panel_rows on h (up to
// the sign of an all-zero sum). Only call when enabled().
size_t sparse_pairs(const float* h, size_t in, uint32_t* cols, uint32_t* xp);
void sparse_panel_rows(const uint32_t* cols, const uint32_t* xp, size_t n, const uint16_t* panels, size_t in,
                       size_t out, size_t p0, size_t p1, float* y);

// The scalar definition on a row-major bf16-valued W (f16 or bf16):
// y[t, o] = sum over pairs of (bf16(x[t, 2j]) W[o, 2j] + bf16(x[t, 2j+1])
// W[o, 2j+1]), in fp32 (tests hold the kernels to it).
void reference_linear(const float* x, int64_t T, const Matrix& W, float* y);

}  // namespace aviary::ops::bf16dot
