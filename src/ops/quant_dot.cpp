// Activation quantization and the scalar reference of the integer dot
// products (ops/quant_dot.h); the SIMD kernels are in quant_dot-inl.h.
#include "ops/quant_dot.h"

#include <cmath>
#include <vector>

#include "ops/quant.h"
#include "util/error.h"

namespace aviary::ops {

namespace {
constexpr int64_t kBlock = quant::kGroupElems;  // 32 values per scale, activations and weights alike
}  // namespace

namespace reference {

void quantize_activations(const float* x, int64_t T, int64_t n, int16_t* q, float* d) {
  const int64_t blocks = n / kBlock;
  for (int64_t b = 0; b < T * blocks; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.f;
    for (int64_t j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float scale = amax / 127.f;
    const float inv = scale != 0.f ? 1.f / scale : 0.f;
    for (int64_t j = 0; j < kBlock; ++j) q[b * kBlock + j] = int16_t(std::nearbyint(xb[j] * inv));
    d[b] = f16_to_f32(f32_to_f16(scale));
  }
}


namespace {
// Weight integers and scale of block b of a Q8_0 or Q4_0 row.
float weight_block(DType t, const uint8_t* row, int64_t b, int32_t* w) {
  if (t == DType::Q8_0) {
    const uint8_t* blk = row + b * int64_t(dtype_block_bytes(t));
    for (int j = 0; j < 32; ++j) w[j] = int8_t(blk[quant::kQ8_0Qs + j]);
    return f16_to_f32(quant::read_u16(blk));
  }
  const uint8_t* blk = row + b * int64_t(dtype_block_bytes(t));
  for (int j = 0; j < 16; ++j) {
    w[j] = (blk[quant::kQ4_0Qs + j] & 0xF) - 8;
    w[j + 16] = (blk[quant::kQ4_0Qs + j] >> 4) - 8;
  }
  return f16_to_f32(quant::read_u16(blk));
}
}  // namespace

void linear_q8(const float* x, int64_t T, const Matrix& W, float* y) {
  if (!uses_q8_activations(W.dtype)) throw Error("linear_q8: weights are not Q8_0 or Q4_0");
  check_whole_blocks(W.dtype, W.cols, "linear: weight row");
  const int64_t in = W.cols, out = W.rows, blocks = in / kBlock;
  std::vector<int16_t> xq(size_t(T * in));
  std::vector<float> xd(size_t(T * blocks));
  quantize_activations(x, T, in, xq.data(), xd.data());
  int32_t w[kBlock];
  for (int64_t o = 0; o < out; ++o)
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0.f;
      for (int64_t b = 0; b < blocks; ++b) {
        const float dw = weight_block(W.dtype, W.row_ptr(o), b, w);
        const int16_t* xb = xq.data() + t * in + b * kBlock;
        int32_t isum = 0;
        for (int j = 0; j < kBlock; ++j) isum += w[j] * xb[j];
        acc += float(isum) * (dw * xd[size_t(t * blocks + b)]);  // one rounding of the scale product, as the kernels
      }
      y[t * out + o] = acc;
    }
}

}  // namespace reference
}  // namespace aviary::ops
