#include "model/gguf_rwkv7_tensors.h"

#include <cstring>

#include "ops/matrix.h"
#include "util/error.h"

// The block-quantized kernels (ops/quant.h) come from another part of the
// project; until they are in the tree, quantized tensors are refused with a
// clear message instead of failing to build.
#if __has_include("ops/quant.h")
#include "ops/quant.h"
#define AVIARY_GGUF_HAVE_QUANT 1
#else
#define AVIARY_GGUF_HAVE_QUANT 0
#endif

namespace aviary::gguf_rwkv7 {

namespace {
[[noreturn]] void no_quant_kernels(DType t) {
  throw Error("tensors of type " + std::string(dtype_name(t)) +
              " need the quantization kernels (ops/quant.h), which this build lacks");
}
}  // namespace

std::string blk(int64_t layer, const std::string& what, const char* suffix) {
  return "blk." + std::to_string(layer) + "." + what + "." + suffix;
}

void row_to_f32(const TensorView& t, int64_t r, int64_t cols, float* out) {
  if (dtype_is_quantized(t.dtype)) {
    if (!AVIARY_GGUF_HAVE_QUANT) no_quant_kernels(t.dtype);
    // Quantized tensors are always contiguous: rows are whole blocks.
#if AVIARY_GGUF_HAVE_QUANT
    ops::dequantize_row(t.dtype, t.data + dtype_bytes(t.dtype, r * cols), cols, out);
#endif
    return;
  }
  if (t.is_contiguous()) {
    ops::convert_to_f32(t.data + size_t(r * cols) * dtype_size(t.dtype), t.dtype, cols, out);
    return;
  }
  for (int64_t c = 0; c < cols; ++c) out[c] = t.at(r * cols + c);
}

std::vector<float> to_f32(const TensorView& t) {
  const int64_t n = t.numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 0) return out;
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
  for (int64_t r = 0; r < n / cols; ++r) row_to_f32(t, r, cols, out.data() + r * cols);
  return out;
}

void encode_row(const float* src, int64_t n, DType type, uint8_t* dst) {
  switch (type) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q5_K: case DType::Q6_K:
#if AVIARY_GGUF_HAVE_QUANT
      ops::quantize_row(type, src, n, dst);
      return;
#else
      no_quant_kernels(type);
#endif
  }
}

std::vector<float> transpose(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> out(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[size_t(c * rows + r)] = m[size_t(r * cols + c)];
  return out;
}

}  // namespace aviary::gguf_rwkv7
