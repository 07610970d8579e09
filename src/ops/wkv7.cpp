#include "ops/wkv7.h"

namespace aviary::ops {

namespace {
void head_step(float* S, int64_t N, const float* r, const float* w, const float* k, const float* v,
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

void wkv7_step(float* S, int64_t H, int64_t N, const float* r, const float* w, const float* k,
               const float* v, const float* kk, const float* a, float* y) {
  for (int64_t h = 0; h < H; ++h) {
    const int64_t o = h * N;
    head_step(S + h * N * N, N, r + o, w + o, k + o, v + o, kk + o, a + o, y + o);
  }
}

void wkv7_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* w,
                   const float* k, const float* v, const float* kk, const float* a, float* y) {
  const int64_t C = H * N;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * C;
    wkv7_step(S, H, N, r + o, w + o, k + o, v + o, kk + o, a + o, y + o);
  }
}

}  // namespace aviary::ops
