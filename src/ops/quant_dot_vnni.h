// Q8_0 / Q4_0 integer products with AVX512-VNNI (vpdpbusd: 64 byte products
// per instruction, four to an int32 lane), for x86 CPUs that have it (Ice
// Lake, Zen 4 and later), on weights re-laid in panels at load (below;
// ops/linear.h linear_pack). The arithmetic contract is quant_dot.h's, so
// results differ from the other variants only in fp32 summation order. A
// matrix not in panels takes the Highway kernels of quant_dot-inl.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops::vnni {

// Whether the CPU has AVX512-VNNI (with F, BW, VL) and the path is not turned
// off by AVIARY_VNNI=0 or set_enabled(false).
bool enabled();

// For tests and comparisons: turn the path off (or back on, where supported).
void set_enabled(bool on);

// Panels: Q8_0 / Q4_0 weights re-laid once at load so that one 512-bit vector
// holds four consecutive weights of each of 16 rows, and vpdpbusd multiplies
// them by four activations broadcast from memory: the 16 output rows are the
// 16 lanes, so no horizontal sums, no nibble shuffles and one scale vector per
// block. Panel p covers rows [16p, 16p + 16) (the last one zero-padded); its
// blocks go in pairs, each pair the two blocks' kPanelRows fp16 scales (one
// 64-byte line), then the first block's quants, then the second's:
//   Q4_0: 4 vectors, vector m lane r = bytes 4m..4m+3 of row r's 16 quant bytes
//         (low nibbles: elements 4m..4m+3, high: 16+4m..16+4m+3), unchanged;
//   Q8_0: 8 vectors, vector k lane r = elements 4k..4k+3 of row r, plus 128
//         (unsigned, as vpdpbusd wants its first operand).
// In pairs, every quant vector is one aligned 64-byte line; block after block
// (32 scale bytes, then 512 or 256) every other block's vectors would each
// straddle two lines: Q8_0 decode from DRAM then streamed 24-26 GB/s a thread
// against 28-30 in pairs (kernels_bench GemvCold, one thread; Q4_0 ~29
// either way). Same bytes as the file, so memory use does not grow (an odd
// last block is padded to a pair: rows of 32 x odd inputs only).
constexpr size_t kPanelRows = 16;

// Whether W's type has a panel layout (Q8_0, Q4_0) and this CPU runs it (enabled()).
bool packs(DType t);

// Bytes of W's panels (whole panels: rows rounded up to 16).
size_t packed_bytes(const Matrix& W);

// Writes W's panels to dst (packed_bytes(W) bytes). Plain code, any CPU.
void pack(const Matrix& W, uint8_t* dst);

// Activations for the panel kernel, from x [T, in] in one pass: per block of
// 32, the values quantize_activations gives (ops/quant_dot.h) as bytes in x8,
// its scale in xd, and in corr the integer correction that undoes the
// weights' offset (-8 * sum for Q4_0 nibbles, -128 * sum for Q8_0 + 128).
// Exactly those values on any CPU (plain IEEE arithmetic).
void quantize_for_panels(const float* x, size_t T, size_t in, DType t, int8_t* x8, int32_t* corr, float* xd);

// Buffers for quantize_for_panels, owned by the calling thread, with room for
// `values` activations. Decode (`decode`) takes them from a ring of four, a
// different one each call: the worker threads read a product's activations,
// and writing the same lines for the next product would first take them back
// from those cores' caches (slow when the host puts the threads on different
// dies). A call's buffers stay valid until one of this thread's later calls
// takes the same ones: the fourth decode call after it, or a prefill call.
struct PanelActivations {
  int8_t* x8;
  int32_t* corr;
  float* xd;
};
PanelActivations panel_activations(size_t values, bool decode);

// Output rows [16 * p0, min(16 * p1, W.rows)) of y = x W^T from W.packed, x
// as quantize_for_panels gives it (x8: [T, W.cols], corr and xd: [T, W.cols / 32]). Only call when
// enabled(). Each output is the same fp32 sequence over blocks for any T, tile
// or thread, so row t of a batch equals row t alone, bit for bit.
void packed_rows(const int8_t* x8, const int32_t* corr, const float* xd, size_t T, const Matrix& W, size_t p0,
                 size_t p1, float* y);

}  // namespace aviary::ops::vnni
