// Vector loads and stores shared by the kernels, once per Highway target:
// weights stored as f32, f16 or bf16 become fp32 vectors in registers (no
// fp32 copy of a weight matrix is ever made), and partial vectors at the end
// of odd-sized rows are zero padded so tails take the same vector path.
// Unaligned addresses are fine everywhere.

// Per-target include guard (the Highway pattern): this file is included once
// for every target by each kernel file that uses foreach_target.h.
#if defined(AVIARY_OPS_LOAD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef AVIARY_OPS_LOAD_INL_H_
#undef AVIARY_OPS_LOAD_INL_H_
#else
#define AVIARY_OPS_LOAD_INL_H_
#endif

#include <cstddef>
#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Upper bound on the lanes of a VF, for stack buffers.
inline constexpr size_t kMaxLanes = hn::MaxLanes(DF());

// Lanes(d) consecutive elements at p, as fp32.
HWY_INLINE VF LoadF32(DF d, const float* HWY_RESTRICT p) { return hn::LoadU(d, p); }

HWY_INLINE VF LoadF32(DF d, const hwy::bfloat16_t* HWY_RESTRICT p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), p));
}

HWY_INLINE VF LoadF32(DF d, const hwy::float16_t* HWY_RESTRICT p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), p));
}

// The n < Lanes(d) elements at p, as fp32, the other lanes zero.
template <typename T>
HWY_INLINE VF LoadPartialF32(DF d, const T* HWY_RESTRICT p, size_t n) {
  T buf[kMaxLanes] = {};
  std::memcpy(buf, p, n * sizeof(T));
  return LoadF32(d, buf);
}

// Stores the first n < Lanes(d) lanes of v at p.
HWY_INLINE void StorePartial(DF d, VF v, float* HWY_RESTRICT p, size_t n) {
  float buf[kMaxLanes];
  hn::StoreU(v, d, buf);
  std::memcpy(p, buf, n * sizeof(float));
}

// A full vector, or with kPartial the first n < Lanes(d) elements zero padded.
template <bool kPartial>
HWY_INLINE VF LoadChunk(DF d, const float* HWY_RESTRICT p, size_t n) {
  if constexpr (kPartial) return LoadPartialF32(d, p, n);
  else return hn::LoadU(d, p);
}

template <bool kPartial>
HWY_INLINE void StoreChunk(DF d, VF v, float* HWY_RESTRICT p, size_t n) {
  if constexpr (kPartial) StorePartial(d, v, p, n);
  else hn::StoreU(v, d, p);
}

// Sum of all lanes, as a scalar.
HWY_INLINE float Sum(DF d, VF v) { return hn::GetLane(hn::SumOfLanes(d, v)); }

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
