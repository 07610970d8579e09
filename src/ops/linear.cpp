#include "ops/linear.h"

#include <cstring>
#include <vector>

namespace aviary::ops {

void convert_to_f32(const void* src, DType t, int64_t n, float* dst) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(h[i]);
      return;
    }
    case DType::BF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(h[i]);
      return;
    }
  }
}

float dot(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums let the compiler vectorise without -ffast-math.
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

namespace {
// Scratch for one converted weight row; grows to the widest row seen.
thread_local std::vector<float> row_buf;

const float* row_as_f32(const Matrix& W, int64_t r) {
  const uint8_t* row = W.row_ptr(r);
  // fp32 rows are used in place unless the file left them misaligned
  // (safetensors only promises what its writer chose).
  if (W.dtype == DType::F32 && reinterpret_cast<uintptr_t>(row) % alignof(float) == 0)
    return reinterpret_cast<const float*>(row);
  if (row_buf.size() < size_t(W.cols)) row_buf.resize(size_t(W.cols));
  convert_to_f32(row, W.dtype, W.cols, row_buf.data());
  return row_buf.data();
}
}  // namespace

void linear(const float* x, int64_t T, const Matrix& W, float* y) {
  const int64_t in = W.cols, out = W.rows;
  for (int64_t o = 0; o < out; ++o) {
    const float* w = row_as_f32(W, o);
    for (int64_t t = 0; t < T; ++t) y[t * out + o] = dot(w, x + t * in, in);
  }
}

void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y) {
  const int64_t in = W.rows, out = W.cols;
  std::memset(y, 0, size_t(T * out) * sizeof(float));
  for (int64_t i = 0; i < in; ++i) {
    const float* w = row_as_f32(W, i);
    for (int64_t t = 0; t < T; ++t) {
      const float xi = x[t * in + i];
      float* yt = y + t * out;
      for (int64_t o = 0; o < out; ++o) yt[o] += xi * w[o];
    }
  }
}

}  // namespace aviary::ops
