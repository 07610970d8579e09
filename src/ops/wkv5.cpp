#include "ops/wkv5.h"

namespace aviary::ops {

namespace {
void head_step(float* S, int64_t N, const float* r, const float* k, const float* v, const float* w,
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
}  // namespace

void wkv5_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* k,
                   const float* v, const float* w, int64_t w_stride, const float* u, float* y) {
  const int64_t C = H * N;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * C;
    const float* wt = w + t * w_stride;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t ho = h * N;
      head_step(S + h * N * N, N, r + o + ho, k + o + ho, v + o + ho, wt + ho, u + ho, y + o + ho);
    }
  }
}

}  // namespace aviary::ops
