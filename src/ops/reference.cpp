#include "ops/reference.h"

#include <cstring>
#include <vector>

#include "ops/quant.h"

namespace aviary::ops::reference {

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

void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
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
  check_whole_blocks(W.dtype, W.cols, "linear: weight row");
  const int64_t in = W.cols, out = W.rows;
  for (int64_t o = 0; o < out; ++o) {
    const float* w = row_as_f32(W, o);
    for (int64_t t = 0; t < T; ++t) y[t * out + o] = dot(w, x + t * in, in);
  }
}

void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y) {
  check_not_quantized(W.dtype, "linear_in_out");
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

namespace {
void wkv5_head_step(float* S, int64_t N, const float* r, const float* k, const float* v, const float* w,
                    const float* u, float* y) {
  for (int64_t j = 0; j < N; ++j) y[j] = 0.f;
  for (int64_t i = 0; i < N; ++i) {
    float* row = S + i * N;
    const float ri = r[i], ki = k[i], wi = w[i], rku = ri * u[i] * ki;
    for (int64_t j = 0; j < N; ++j) {
      y[j] += ri * row[j] + rku * v[j];
      row[j] = ki * v[j] + wi * row[j];
    }
  }
}

void wkv7_head_step(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v,
                    const float* kk, const float* a, float* y) {
  for (int64_t i = 0; i < N; ++i) {
    float* row = S + i * N;
    // sa = (S @ -kk)[i], from the state before this token's update.
    float sa = 0;
    for (int64_t j = 0; j < N; ++j) sa -= row[j] * kk[j];
    const float vi = v[i];
    float out = 0;
    for (int64_t j = 0; j < N; ++j) {
      const float s = row[j] * w[j] + sa * (kk[j] * a[j]) + vi * k[j];
      row[j] = s;
      out += s * r[j];
    }
    y[i] = out;
  }
}
}  // namespace

void wkv5_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* k,
                   const float* v, const float* w, int64_t w_stride, const float* u, float* y) {
  const int64_t C = H * N;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * C;
    const float* wt = w + t * w_stride;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t ho = h * N;
      wkv5_head_step(S + h * N * N, N, r + o + ho, k + o + ho, v + o + ho, wt + ho, u + ho, y + o + ho);
    }
  }
}

void wkv7_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* w,
                   const float* k, const float* v, const float* kk, const float* a, float* y) {
  const int64_t C = H * N;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * C;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t ho = o + h * N;
      wkv7_head_step(S + h * N * N, N, r + ho, w + ho, k + ho, v + ho, kk + ho, a + ho, y + ho);
    }
  }
}

}  // namespace aviary::ops::reference
