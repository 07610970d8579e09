// llama.cpp's (GGML) block-quantized weight formats: the byte layouts, the
// reference quantizers that write them and the plain dequantizers that read
// them. The layouts are GGML's exactly, so rows interoperate with GGUF files:
//
//   Q8_0  34 bytes / 32 values:  fp16 d, int8 q[32]                x = d * q
//   Q4_0  18 bytes / 32 values:  fp16 d, uint8 qs[16]              x = d * (q - 8)
//         value j < 16 is the low nibble of qs[j], value j + 16 its high nibble
//   Q4_K 144 bytes / 256 values: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]
//         8 sub-blocks of 32 with a 6-bit scale sc and a 6-bit min m each
//         (packed as q4k_scale_min() reads them);  x = d * sc * q - dmin * m.
//         Sub-blocks 2p and 2p+1 share the 32 bytes qs[32p, 32p + 32): the
//         first in the low nibbles, the second in the high nibbles.
//   Q4_1  20 bytes / 32 values:  fp16 d, fp16 m, uint8 qs[16]      x = d * q + m
//         nibbles as in Q4_0
//   Q5_0  22 bytes / 32 values:  fp16 d, uint8 qh[4], uint8 qs[16] x = d * (q - 16)
//         low 4 bits as in Q4_0; bit 4 of value j is bit j of the
//         little-endian 32-bit qh
//   Q5_1  24 bytes / 32 values:  fp16 d, fp16 m, uint8 qh[4], uint8 qs[16]
//         bits as in Q5_0;                                         x = d * q + m
//   Q5_K 176 bytes / 256 values: fp16 d, fp16 dmin, uint8 scales[12],
//         uint8 qh[32], uint8 qs[128]: Q4_K's scales and nibbles, plus bit 4 of
//         value l of sub-block j in bit j of qh[l];  x = d * sc * q - dmin * m.
//   Q6_K 210 bytes / 256 values: uint8 ql[128], uint8 qh[64], int8 scales[16],
//         fp16 d. 16 groups of 16 values with an 8-bit signed scale each;
//         x = d * scale * (q - 32) with 6-bit q. Halves h (values 128h ..)
//         use ql[64h, 64h + 64) and qh[32h, 32h + 32): value 128h + 32s + l
//         (s = 0..3, l = 0..31) has its low 4 bits in ql[64h + 32(s % 2) + l]
//         (low nibble for s < 2, high for s >= 2), its high 2 bits in bits
//         2s, 2s + 1 of qh[32h + l], and scale scales[8h + 2s + l / 16].
// fp16 fields are little endian (as every GGUF file is).
#pragma once

#include <cstdint>

#include "util/dtype.h"

namespace aviary::ops {

// Quantizes n values (a whole number of dtype_block_elems(t)) into
// dtype_bytes(t, n) bytes at out. Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 give the
// same bytes as ggml's reference quantizers (quantize_row_q8_0_ref, ...);
// Q4_K, Q5_K and Q6_K follow quantize_row_q4_K_ref / _q5_K_ref / _q6_K_ref
// step for step (make_qkx2_quants, make_qx_quants), which gives their bytes
// too as long as the compiler
// does not fuse its multiply-adds (ggml built with FMA contraction, the GNU C
// default with -march=native, can differ in the last bit of a search sum and so
// now and then pick a neighbouring quant). F32/F16/BF16 are converted with
// round-to-nearest-even. Non-finite inputs and bad sizes throw aviary::Error.
void quantize_row(DType t, const float* x, int64_t n, void* out);

// The inverse: n values (a whole number of blocks) from dtype_bytes(t, n)
// bytes at src, with ggml's arithmetic (each value rounded once).
void dequantize_row(DType t, const void* src, int64_t n, float* out);

// Throws aviary::Error unless n >= 0 is a whole number of t's blocks; `what`
// names the caller and the tensor for the message.
void check_whole_blocks(DType t, int64_t n, const char* what);

// Throws aviary::Error for a block-quantized type: for kernels that read weight
// columns (linear_in_out; the RWKV-6 LoRA factors it serves stay in float).
void check_not_quantized(DType t, const char* what);

namespace quant {

// Byte offsets inside the blocks.
inline constexpr int kQ8_0Qs = 2;
inline constexpr int kQ4_0Qs = 2;
inline constexpr int kQ4_KDmin = 2, kQ4_KScales = 4, kQ4_KQs = 16;
inline constexpr int kQ4_1M = 2, kQ4_1Qs = 4;
inline constexpr int kQ5_0Qh = 2, kQ5_0Qs = 6;
inline constexpr int kQ5_1M = 2, kQ5_1Qh = 4, kQ5_1Qs = 8;
inline constexpr int kQ5_KDmin = 2, kQ5_KScales = 4, kQ5_KQh = 16, kQ5_KQs = 48;
inline constexpr int kQ6_KQl = 0, kQ6_KQh = 128, kQ6_KScales = 192, kQ6_KD = 208;
// Values per group that shares one scale (one scale and min; Q6_K's groups of
// 32 hold two 16-value halves with a scale each).
inline constexpr int kGroupElems = 32;

inline uint16_t read_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t read_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K or Q5_K block from its 12
// packed bytes: sub-blocks 0-3 keep theirs in the low 6 bits of bytes j and
// j + 4; sub-blocks 4-7 keep the low 4 bits in the nibbles of byte j + 4 and
// the high 2 bits in the top bits of bytes j - 4 (scale) and j (min).
inline void q4k_scale_min(const uint8_t* scales, int j, int& sc, int& m) {
  if (j < 4) {
    sc = scales[j] & 63;
    m = scales[j + 4] & 63;
  } else {
    sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// Where group g (0..7, 32 values) of a Q6_K block keeps its bits: the 32
// low-nibble bytes (`ql`, nibble at `ql_shift`), the 32 high-bit bytes (`qh`,
// two bits at `qh_shift`) and the scales of its two 16-value halves.
struct Q6KGroup {
  const uint8_t* ql;
  const uint8_t* qh;
  int ql_shift, qh_shift;
  int8_t scale_lo, scale_hi;
};

inline Q6KGroup q6k_group(const uint8_t* blk, int g) {
  const int h = g / 4, s = g % 4;
  Q6KGroup r;
  r.ql = blk + kQ6_KQl + 64 * h + 32 * (s % 2);
  r.qh = blk + kQ6_KQh + 32 * h;
  r.ql_shift = 4 * (s / 2);
  r.qh_shift = 2 * s;
  r.scale_lo = int8_t(blk[kQ6_KScales + 8 * h + 2 * s]);
  r.scale_hi = int8_t(blk[kQ6_KScales + 8 * h + 2 * s + 1]);
  return r;
}

}  // namespace quant
}  // namespace aviary::ops
