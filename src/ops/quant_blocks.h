// Internal to ops/quant*.cpp: one-block quantizers and dequantizers of each
// GGML type (layouts in ops/quant.h) and the scalar rounding helpers they share.
// quant.cpp has the 32-value types, quant_k.cpp the 256-value K types.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/quant.h"
#include "util/dtype.h"

namespace aviary::ops::quant {

inline void write_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v & 0xff);
  p[1] = uint8_t(v >> 8);
}

inline float read_f16(const uint8_t* p) { return f16_to_f32(read_u16(p)); }

// v converted to an int in [lo, hi]: out-of-range values (possible only with
// degenerate scales, such as a subnormal d whose inverse overflows) are clamped
// instead of being undefined behaviour; NaN becomes 0 clamped.
inline int clamped_int(float v, int lo, int hi) {
  if (std::isnan(v)) return std::clamp(0, lo, hi);
  if (v <= float(lo)) return lo;
  if (v >= float(hi)) return hi;
  return int(v);  // truncates, as a C cast does
}

// Round half to even: ggml's nearest_int (which adds 1.5 * 2^23, what
// nearbyint does in the default rounding mode).
inline int nearest_even(float v) { return clamped_int(std::nearbyint(v), -4194303, 4194303); }

// One block: x has dtype_block_elems values, blk dtype_block_bytes bytes.
void quantize_q8_0(const float* x, uint8_t* blk);
void dequantize_q8_0(const uint8_t* blk, float* y);
void quantize_q4_0(const float* x, uint8_t* blk);
void dequantize_q4_0(const uint8_t* blk, float* y);
void quantize_q4_1(const float* x, uint8_t* blk);
void dequantize_q4_1(const uint8_t* blk, float* y);
void quantize_q5_0(const float* x, uint8_t* blk);
void dequantize_q5_0(const uint8_t* blk, float* y);
void quantize_q5_1(const float* x, uint8_t* blk);
void dequantize_q5_1(const uint8_t* blk, float* y);
void quantize_q4_k(const float* x, uint8_t* blk);
void dequantize_q4_k(const uint8_t* blk, float* y);
void quantize_q5_k(const float* x, uint8_t* blk);
void dequantize_q5_k(const uint8_t* blk, float* y);
void quantize_q6_k(const float* x, uint8_t* blk);
void dequantize_q6_k(const uint8_t* blk, float* y);

}  // namespace aviary::ops::quant
