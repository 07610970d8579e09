// Reference quantizers and dequantizers of the GGML block formats (see
// quant.h): the row entry points and the 32-value types; quant_k.cpp has the
// 256-value K types. The rounding rules are ggml's: Q8_0 rounds half away
// from zero (roundf), Q4_0 and Q5_0 truncate x/d + 8.5 (+ 16.5) towards zero,
// Q4_1 and Q5_1 truncate (x - min)/d + 0.5. Scales are computed in fp32 and
// only stored as fp16; quantization divides by the fp32 scale, not the stored one.
#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "ops/quant_blocks.h"
#include "util/error.h"

namespace aviary::ops {

void check_whole_blocks(DType t, int64_t n, const char* what) {
  const int64_t block = dtype_block_elems(t);
  if (n < 0 || n % block != 0)
    throw Error(std::string(what) + ": " + std::to_string(n) + " values are not a whole number of " +
                std::string(dtype_name(t)) + " blocks of " + std::to_string(block));
}

void check_not_quantized(DType t, const char* what) {
  if (dtype_is_quantized(t))
    throw Error(std::string(what) + ": weights stored as " + std::string(dtype_name(t)) +
                " are not supported (only f32, f16 and bf16)");
}

namespace quant {

// ---- Q8_0 -------------------------------------------------------------------

void quantize_q8_0(const float* x, uint8_t* blk) {
  float amax = 0.f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  for (int j = 0; j < 32; ++j) blk[kQ8_0Qs + j] = uint8_t(int8_t(clamped_int(std::round(x[j] * id), -128, 127)));
}

void dequantize_q8_0(const uint8_t* blk, float* y) {
  const float d = read_f16(blk);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(blk[kQ8_0Qs + j])) * d;
}

// ---- Q4_0 and Q5_0: symmetric, d = -(value of largest magnitude) / 2^(bits-1) ----

namespace {

// The value of largest magnitude (the first one, on ties).
float signed_absmax(const float* x) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

// Smallest and largest of a block's 32 values.
void block_range(const float* x, float& lo, float& hi) {
  lo = std::numeric_limits<float>::max();
  hi = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
}

// Packs 32 levels of up to 4 bits: value j < 16 in the low nibble of qs[j],
// value j + 16 in its high nibble.
void pack_nibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
}

// Bit 4 of the 32 levels, value j in bit j, little endian.
void pack_high_bits(const uint8_t* L, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= uint32_t((L[j] >> 4) & 1) << j;
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(h >> (8 * i));
}

// Level (low 4 bits | bit 4) of value j of a block packed as above.
int level5(const uint8_t* qs, uint32_t qh, int j) {
  const int nibble = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return nibble | int((qh >> j) & 1) << 4;
}

}  // namespace

void quantize_q4_0(const float* x, uint8_t* blk) {
  // The scale maps the value of largest magnitude to -8.
  const float d = signed_absmax(x) / -8;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) L[j] = uint8_t(std::min(15, clamped_int(x[j] * id + 8.5f, 0, 127)));
  pack_nibbles(L, blk + kQ4_0Qs);
}

void dequantize_q4_0(const uint8_t* blk, float* y) {
  const float d = read_f16(blk);
  const uint8_t* qs = blk + kQ4_0Qs;
  for (int j = 0; j < 16; ++j) {
    y[j] = float((qs[j] & 0xF) - 8) * d;
    y[j + 16] = float((qs[j] >> 4) - 8) * d;
  }
}

void quantize_q5_0(const float* x, uint8_t* blk) {
  // The scale maps the value of largest magnitude to -16.
  const float d = signed_absmax(x) / -16;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) L[j] = uint8_t(std::min(31, clamped_int(x[j] * id + 16.5f, 0, 127)));
  pack_high_bits(L, blk + kQ5_0Qh);
  pack_nibbles(L, blk + kQ5_0Qs);
}

void dequantize_q5_0(const uint8_t* blk, float* y) {
  const float d = read_f16(blk);
  const uint32_t qh = read_u32(blk + kQ5_0Qh);
  for (int j = 0; j < 32; ++j) y[j] = float(level5(blk + kQ5_0Qs, qh, j) - 16) * d;
}

// ---- Q4_1 and Q5_1: d = (max - min) / (2^bits - 1), offset min ------------------

void quantize_q4_1(const float* x, uint8_t* blk) {
  float lo, hi;
  block_range(x, lo, hi);
  const float d = (hi - lo) / 15;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  write_u16(blk + kQ4_1M, f32_to_f16(lo));
  uint8_t L[32];
  for (int j = 0; j < 32; ++j) L[j] = uint8_t(std::min(15, clamped_int((x[j] - lo) * id + 0.5f, 0, 127)));
  pack_nibbles(L, blk + kQ4_1Qs);
}

void dequantize_q4_1(const uint8_t* blk, float* y) {
  const float d = read_f16(blk), m = read_f16(blk + kQ4_1M);
  const uint8_t* qs = blk + kQ4_1Qs;
  for (int j = 0; j < 16; ++j) {
    y[j] = float(qs[j] & 0xF) * d + m;
    y[j + 16] = float(qs[j] >> 4) * d + m;
  }
}

void quantize_q5_1(const float* x, uint8_t* blk) {
  float lo, hi;
  block_range(x, lo, hi);
  const float d = (hi - lo) / 31;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  write_u16(blk + kQ5_1M, f32_to_f16(lo));
  uint8_t L[32];
  // No clamp at 31 here (ggml has none): (hi - lo) * id + 0.5 stays below 32.
  for (int j = 0; j < 32; ++j) L[j] = uint8_t(clamped_int((x[j] - lo) * id + 0.5f, 0, 255));
  pack_high_bits(L, blk + kQ5_1Qh);
  pack_nibbles(L, blk + kQ5_1Qs);
}

void dequantize_q5_1(const uint8_t* blk, float* y) {
  const float d = read_f16(blk), m = read_f16(blk + kQ5_1M);
  const uint32_t qh = read_u32(blk + kQ5_1Qh);
  for (int j = 0; j < 32; ++j) y[j] = float(level5(blk + kQ5_1Qs, qh, j)) * d + m;
}

}  // namespace quant

namespace {

void check_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error("quantize_row: value " + std::to_string(i) + " is not finite (" + std::to_string(x[i]) + ")");
}

using BlockQuantizer = void (*)(const float*, uint8_t*);
using BlockDequantizer = void (*)(const uint8_t*, float*);

BlockQuantizer block_quantizer(DType t) {
  switch (t) {
    case DType::Q8_0: return quant::quantize_q8_0;
    case DType::Q4_0: return quant::quantize_q4_0;
    case DType::Q4_1: return quant::quantize_q4_1;
    case DType::Q5_0: return quant::quantize_q5_0;
    case DType::Q5_1: return quant::quantize_q5_1;
    case DType::Q4_K: return quant::quantize_q4_k;
    case DType::Q5_K: return quant::quantize_q5_k;
    case DType::Q6_K: return quant::quantize_q6_k;
    case DType::F32: case DType::F16: case DType::BF16: break;
  }
  return nullptr;
}

BlockDequantizer block_dequantizer(DType t) {
  switch (t) {
    case DType::Q8_0: return quant::dequantize_q8_0;
    case DType::Q4_0: return quant::dequantize_q4_0;
    case DType::Q4_1: return quant::dequantize_q4_1;
    case DType::Q5_0: return quant::dequantize_q5_0;
    case DType::Q5_1: return quant::dequantize_q5_1;
    case DType::Q4_K: return quant::dequantize_q4_k;
    case DType::Q5_K: return quant::dequantize_q5_k;
    case DType::Q6_K: return quant::dequantize_q6_k;
    case DType::F32: case DType::F16: case DType::BF16: break;
  }
  return nullptr;
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, void* out) {
  check_whole_blocks(t, n, "quantize_row");
  check_finite(x, n);
  auto* dst = static_cast<uint8_t*>(out);
  switch (t) {
    case DType::F32: std::memcpy(dst, x, size_t(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) quant::write_u16(dst + 2 * i, f32_to_f16(x[i]));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) quant::write_u16(dst + 2 * i, f32_to_bf16(x[i]));
      return;
    default: break;
  }
  const BlockQuantizer quantize_block = block_quantizer(t);
  const int64_t be = dtype_block_elems(t);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t b = 0; b < n / be; ++b) quantize_block(x + b * be, dst + size_t(b) * bb);
}

void dequantize_row(DType t, const void* src, int64_t n, float* out) {
  check_whole_blocks(t, n, "dequantize_row");
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32: std::memcpy(out, s, size_t(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = quant::read_f16(s + 2 * i);
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(quant::read_u16(s + 2 * i));
      return;
    default: break;
  }
  const BlockDequantizer dequantize_block = block_dequantizer(t);
  const int64_t be = dtype_block_elems(t);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t b = 0; b < n / be; ++b) dequantize_block(s + size_t(b) * bb, out + b * be);
}

}  // namespace aviary::ops
