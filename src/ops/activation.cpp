// Vectorised activations (ops/activation.h) and array helpers
// (ops/elementwise.h), with Highway dynamic dispatch.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

// Applies f to every vector of y, the tail through a zero-padded vector.
template <class F>
HWY_INLINE void Map(float* HWY_RESTRICT y, size_t n, const F& f) {
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(f(d, hn::LoadU(d, y + i)), d, y + i);
  if (i < n) StorePartial(d, f(d, LoadPartialF32(d, y + i, n - i)), y + i, n - i);
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

// out = x + (prev - x) * mix over n elements; out may alias x or prev (each
// vector is loaded before its store).
void TokenShiftMix(const float* x, const float* prev, const float* mix, size_t n, float* out) {
  // Not HWY_RESTRICT: out may be x or prev.
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) {
    const VF xv = hn::LoadU(d, x + i);
    hn::StoreU(hn::MulAdd(hn::Sub(hn::LoadU(d, prev + i), xv), hn::LoadU(d, mix + i), xv), d, out + i);
  }
  if (i < n) {
    const size_t r = n - i;
    const VF xv = LoadPartialF32(d, x + i, r);
    StorePartial(d, hn::MulAdd(hn::Sub(LoadPartialF32(d, prev + i, r), xv), LoadPartialF32(d, mix + i, r), xv), out + i,
                 r);
  }
}

// y = op(y, x) over n elements.
template <class Op>
HWY_INLINE void Combine(float* HWY_RESTRICT y, const float* HWY_RESTRICT x, size_t n, const Op& op) {
  const DF d;
  const size_t L = hn::Lanes(d);
  size_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(op(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  if (i < n) StorePartial(d, op(LoadPartialF32(d, y + i, n - i), LoadPartialF32(d, x + i, n - i)), y + i, n - i);
}

void AddInplace(float* y, const float* x, size_t n) {
  Combine(y, x, n, [](VF a, VF b) { return hn::Add(a, b); });
}

void MulInplace(float* y, const float* x, size_t n) {
  Combine(y, x, n, [](VF a, VF b) { return hn::Mul(a, b); });
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <cmath>

#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/simd.h"

namespace aviary::ops {

HWY_EXPORT(Sigmoid);
HWY_EXPORT(Tanh);
HWY_EXPORT(ExpScaled);
HWY_EXPORT(ReluSquared);
HWY_EXPORT(TokenShiftMix);
HWY_EXPORT(AddInplace);
HWY_EXPORT(MulInplace);

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

void token_shift_mix(const float* x, const float* prev, const float* mix, int64_t n, float* out) {
  if (detail::use_reference()) return reference::token_shift_mix(x, prev, mix, n, out);
  if (n > 0) HWY_DYNAMIC_DISPATCH(TokenShiftMix)(x, prev, mix, size_t(n), out);
}

void add_inplace(float* y, const float* x, int64_t n) {
  if (detail::use_reference()) return reference::add_inplace(y, x, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(AddInplace)(y, x, size_t(n));
}

void mul_inplace(float* y, const float* x, int64_t n) {
  if (detail::use_reference()) return reference::mul_inplace(y, x, n);
  if (n > 0) HWY_DYNAMIC_DISPATCH(MulInplace)(y, x, size_t(n));
}

namespace reference {

void token_shift_mix(const float* x, const float* prev, const float* mix, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] + (prev[i] - x[i]) * mix[i];
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void mul_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
}

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
