// Normalisations (ops/norm.h): LayerNorm vectorised with Highway dynamic
// dispatch (its statistics in double lanes, as the reference keeps them in
// double); the plain loops are reference::layer_norm.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/norm.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void LayerNormRow(const float* HWY_RESTRICT x, size_t n, const float* HWY_RESTRICT w, const float* HWY_RESTRICT b,
                  float eps, float* out) {
  // Sum and squared deviations in double: n floats promoted a (half-width)
  // vector at a time, the tail element by element.
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;
  const size_t Ld = hn::Lanes(dd);
  auto sum_of = [&](auto term) HWY_ATTR {
    auto acc = hn::Zero(dd);
    size_t i = 0;
    for (; i + Ld <= n; i += Ld) acc = hn::Add(acc, term(hn::PromoteTo(dd, hn::LoadU(dh, x + i))));
    double s = hn::GetLane(hn::SumOfLanes(dd, acc));
    for (; i < n; ++i) s += hn::GetLane(term(hn::Set(dd, double(x[i]))));
    return s;
  };
  const double mean = sum_of([](auto v) { return v; }) / double(n);
  const auto vmean = hn::Set(dd, mean);
  const double var = sum_of([&](auto v) HWY_ATTR {
                       const auto dv = hn::Sub(v, vmean);
                       return hn::Mul(dv, dv);
                     }) / double(n);
  // The affine part in fp32, rounded step by step as the reference does.
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const float inv = float(1.0 / std::sqrt(var + double(eps))), m = float(mean);
  const auto vinv = hn::Set(d, inv), vm = hn::Set(d, m);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const auto y = hn::Mul(hn::Mul(hn::Sub(hn::LoadU(d, x + i), vm), vinv), hn::LoadU(d, w + i));
    hn::StoreU(hn::Add(y, hn::LoadU(d, b + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <cmath>

#include "ops/norm.h"
#include "ops/simd.h"

namespace aviary::ops {

HWY_EXPORT(LayerNormRow);

void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out) {
  if (detail::use_reference()) return reference::layer_norm(x, n, w, b, eps, out);
  if (n > 0) HWY_DYNAMIC_DISPATCH(LayerNormRow)(x, size_t(n), w, b, eps, out);
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

namespace reference {

void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out) {
  // Two passes in double for the statistics: cheap at these sizes and keeps
  // the rounding well below the fp32 noise of the official fp32 code.
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

}  // namespace reference
}  // namespace aviary::ops

#endif  // HWY_ONCE
