// The RWKV-4 WKV recurrence in its numerically stable form: per channel the
// state keeps a numerator aa, a denominator bb and the running maximum
// exponent pp, so exp() never overflows. Per token, with w = -exp(time_decay)
// and u = time_first:
//   p = max(pp, u + k);  y = (e^(pp-p) aa + e^(u+k-p) v) / (e^(pp-p) bb + e^(u+k-p))
//   q = max(w + pp, k);  aa = e^(w+pp-q) aa + e^(k-q) v;  bb = e^(w+pp-q) bb + e^(k-q);  pp = q
#pragma once

#include <cstdint>

namespace aviary::ops {

// T tokens of C channels: k, v, y are [T, C]; w, u, aa, bb, pp are [C].
void wkv4_sequence(float* aa, float* bb, float* pp, int64_t C, int64_t T, const float* w,
                   const float* u, const float* k, const float* v, float* y);

}  // namespace aviary::ops
