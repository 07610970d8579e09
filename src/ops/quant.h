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
// fp16 fields are little endian (as every GGUF file is).
#pragma once

#include <cstdint>

#include "util/dtype.h"

namespace aviary::ops {

// Quantizes n values (a whole number of dtype_block_elems(t)) into
// dtype_bytes(t, n) bytes at out. Q8_0 and Q4_0 give the same bytes as ggml's
// reference quantizers (quantize_row_q8_0_ref, quantize_row_q4_0_ref); Q4_K
// follows quantize_row_q4_K_ref's search step for step (make_qkx2_quants,
// 20 steps from -1 in 0.1), which gives its bytes too as long as the compiler
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
// columns (linear_in_out; the RWKV-7 LoRA factors it serves stay in float).
void check_not_quantized(DType t, const char* what);

namespace quant {

// Byte offsets inside the blocks.
inline constexpr int kQ8_0Qs = 2;
inline constexpr int kQ4_0Qs = 2;
inline constexpr int kQ4_KDmin = 2, kQ4_KScales = 4, kQ4_KQs = 16;
// Values per group that shares one scale (every block type here).
inline constexpr int kGroupElems = 32;

inline uint16_t read_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block from its 12
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

}  // namespace quant
}  // namespace aviary::ops
