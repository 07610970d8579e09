// Helpers for testing every SIMD variant of the kernels against the plain
// scalar reference (ops/reference.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/bf16_dot.h"
#include "ops/simd.h"
#include "util/dtype.h"

namespace aviary::ops::test {

// Sizes that exercise full vectors, partial tails and the empty-tail case.
inline const std::vector<int64_t> kOddSizes = {1, 3, 7, 17, 33, 64, 130, 1000};

inline std::vector<float> random_vector(size_t n, uint32_t seed, float mean = 0.f, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Random N(0,1) weights stored as `t`, `offset` bytes into the buffer (to
// test unaligned rows), and the largest magnitude they decode to.
struct StoredWeights {
  std::vector<uint8_t> bytes;
  size_t offset = 0;
  float max_abs = 0.f;
  const void* data() const { return bytes.data() + offset; }
};

inline StoredWeights stored_weights(int64_t n, DType t, uint32_t seed, size_t offset = 0) {
  const auto v = random_vector(size_t(n), seed);
  StoredWeights w;
  w.offset = offset;
  w.bytes.resize(offset + size_t(n) * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* p = w.bytes.data() + offset + i * dtype_size(t);
    if (t == DType::F32) std::memcpy(p, &v[i], 4);
    const uint16_t h = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
    if (t != DType::F32) std::memcpy(p, &h, 2);
    w.max_abs = std::max(w.max_abs, std::fabs(load_as_f32(w.data(), t, i)));
  }
  return w;
}

inline float max_abs(const std::vector<float>& v) {
  float m = 0.f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Allowed |SIMD - reference| for sums of n products bounded by max_product:
// the two sum in different orders, each with fp32 rounding.
inline double sum_tolerance(int64_t n, double max_product) {
  return 1e-6 * std::sqrt(double(std::max<int64_t>(n, 1))) * max_product;
}

// The Highway variants this build compiled and this CPU runs (not "reference").
inline std::vector<std::string> simd_variants() {
  std::vector<std::string> v = simd_targets();
  v.erase(std::remove(v.begin(), v.end(), "reference"), v.end());
  return v;
}

// A test fixture running with the variant named by its parameter (or by
// variant_param() for tuples), restoring the one active before afterwards.
// The AVX512-BF16 products, which bf16 panels take whatever the variant and
// which round activations to bf16, are off meanwhile (bf16_dot_test.cpp holds
// them to their own definition).
template <class Param>
class ForcedSimdTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    saved_ = simd_target();
    bf16_dot_was_ = bf16dot::enabled();
    bf16dot::set_enabled(false);
    set_simd_target(variant_param());
  }
  void TearDown() override {
    set_simd_target(saved_);
    bf16dot::set_enabled(bf16_dot_was_);
  }
  std::string variant_param() const {
    if constexpr (std::is_same_v<Param, std::string>) return this->GetParam();
    else return std::get<0>(this->GetParam());
  }

 private:
  std::string saved_;
  bool bf16_dot_was_ = false;
};

}  // namespace aviary::ops::test
