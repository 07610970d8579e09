#include "ops/norm.h"

#include <algorithm>
#include <cmath>

namespace aviary::ops {

void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out) {
  // Two passes in double for the statistics: cheap at these sizes and keeps
  // the rounding well below the fp32 noise of the reference.
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / double(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    var += d * d;
  }
  var /= double(n);
  const float inv = float(1.0 / std::sqrt(var + double(eps)));
  const float m = float(mean);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

void group_norm(const float* x, int64_t groups, int64_t group_size, const float* w, const float* b,
                float eps, float* out) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t o = g * group_size;
    layer_norm(x + o, group_size, w + o, b + o, eps, out + o);
  }
}

void l2_normalize_groups(const float* x, int64_t groups, int64_t group_size, float eps, float* out) {
  for (int64_t g = 0; g < groups; ++g) {
    const float* xg = x + g * group_size;
    double ss = 0;
    for (int64_t i = 0; i < group_size; ++i) ss += double(xg[i]) * xg[i];
    const float inv = float(1.0 / std::max(std::sqrt(ss), double(eps)));
    for (int64_t i = 0; i < group_size; ++i) out[g * group_size + i] = xg[i] * inv;
  }
}

}  // namespace aviary::ops
