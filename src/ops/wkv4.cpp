#include "ops/wkv4.h"

#include <algorithm>
#include <cmath>

namespace aviary::ops {

void wkv4_sequence(float* aa, float* bb, float* pp, int64_t C, int64_t T, const float* w,
                   const float* u, const float* k, const float* v, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* kt = k + t * C;
    const float* vt = v + t * C;
    float* yt = y + t * C;
    for (int64_t c = 0; c < C; ++c) {
      const float ww = u[c] + kt[c];
      const float p = std::max(pp[c], ww);
      const float e1 = std::exp(pp[c] - p), e2 = std::exp(ww - p);
      yt[c] = (e1 * aa[c] + e2 * vt[c]) / (e1 * bb[c] + e2);
      const float wd = w[c] + pp[c];
      const float q = std::max(wd, kt[c]);
      const float d1 = std::exp(wd - q), d2 = std::exp(kt[c] - q);
      aa[c] = d1 * aa[c] + d2 * vt[c];
      bb[c] = d1 * bb[c] + d2;
      pp[c] = q;
    }
  }
}

}  // namespace aviary::ops
