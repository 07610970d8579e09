// Helpers shared by the quantization tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "ops/quant.h"
#include "util/dtype.h"

namespace aviary::ops::test {

// x quantized as t (x.size() a whole number of t's blocks).
inline std::vector<uint8_t> quantized(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(dtype_bytes(t, int64_t(x.size())));
  quantize_row(t, x.data(), int64_t(x.size()), q.data());
  return q;
}

// The n values of q (type t) as fp32.
inline std::vector<float> dequantized(DType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, q.data(), n, y.data());
  return y;
}

// n N(0, sd) values from `seed`.
inline std::vector<float> normal_row(size_t n, uint32_t seed, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace aviary::ops::test
