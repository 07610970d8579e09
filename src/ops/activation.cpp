// Vectorised activations (ops/activation.h), with Highway dynamic dispatch.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Applies f to every vector of y, the tail through a zero-padded vector.
template <class F>
HWY_INLINE void Map(float* HWY_RESTRICT y, size_t n, const F& f) {
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(f(d, hn::LoadU(d, y + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
    for (size_t j = i; j < n; ++j) buf[j - i] = y[j];
    hn::Store(f(d, hn::Load(d, buf)), d, buf);
    for (size_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

void Sigmoid(float* y, size_t n) {
  Map(y, n, [](DF d, VF v) {
    // exp(-v) overflows fp32 past 88; sigmoid is 0 to fp32 precision there anyway.
    const VF e = hn::Exp(d, hn::Min(hn::Neg(v), hn::Set(d, 88.f)));
    return hn::Div(hn::Set(d, 1.f), hn::Add(hn::Set(d, 1.f), e));
  });
}

void Tanh(float* y, size_t n) {
  Map(y, n, [](DF d, VF v) { return hn::Tanh(d, v); });
}

void ExpScaled(float* y, float scale, size_t n) {
  Map(y, n, [scale](DF d, VF v) { return hn::Exp(d, hn::Mul(v, hn::Set(d, scale))); });
}

void ReluSquared(float* y, size_t n) {
  Map(y, n, [](DF d, VF v) {
    const VF r = hn::Max(v, hn::Zero(d));
    return hn::Mul(r, r);
  });
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <cmath>

#include "ops/activation.h"
#include "ops/simd.h"

namespace aviary::ops {

HWY_EXPORT(Sigmoid);
HWY_EXPORT(Tanh);
HWY_EXPORT(ExpScaled);
HWY_EXPORT(ReluSquared);

void sigmoid_inplace(float* y, int64_t n) {
  if (detail::use_reference()) return reference::sigmoid_inplace(y, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(Sigmoid)(y, size_t(n));
}

void tanh_inplace(float* y, int64_t n) {
  if (detail::use_reference()) return reference::tanh_inplace(y, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(Tanh)(y, size_t(n));
}

void exp_inplace(float* y, float scale, int64_t n) {
  if (detail::use_reference()) return reference::exp_inplace(y, scale, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(ExpScaled)(y, scale, size_t(n));
}

void relu_squared_inplace(float* y, int64_t n) {
  if (detail::use_reference()) return reference::relu_squared_inplace(y, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(ReluSquared)(y, size_t(n));
}

namespace reference {

void sigmoid_inplace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-y[i]));
}

void tanh_inplace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(y[i]);
}

void exp_inplace(float* y, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(scale * y[i]);
}

void relu_squared_inplace(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = y[i] > 0.f ? y[i] : 0.f;
    y[i] = r * r;
  }
}

}  // namespace reference
}  // namespace aviary::ops

#endif  // HWY_ONCE
