// Normalisations and the RWKV-7 recurrence against direct double-precision
// implementations of their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/norm.h"
#include "ops/wkv7.h"

namespace aviary::ops {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float mean = 0.f, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(LayerNorm, MatchesDefinition) {
  for (int64_t n : {1, 2, 5, 64, 129, 768}) {
    const auto x = random_vector(size_t(n), 1, 3.f, 2.f), w = random_vector(size_t(n), 2), b = random_vector(size_t(n), 3);
    std::vector<float> y(static_cast<size_t>(n));
    layer_norm(x.data(), n, w.data(), b.data(), 1e-5f, y.data());
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= double(n);
    for (float v : x) var += (v - mean) * (v - mean);
    var /= double(n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = (x[size_t(i)] - mean) / std::sqrt(var + 1e-5) * w[size_t(i)] + b[size_t(i)];
      EXPECT_NEAR(y[size_t(i)], ref, 1e-5) << "n=" << n << " i=" << i;
    }
  }
}

TEST(LayerNorm, InPlace) {
  auto x = random_vector(100, 4);
  const auto w = random_vector(100, 5), b = random_vector(100, 6);
  std::vector<float> y(100);
  layer_norm(x.data(), 100, w.data(), b.data(), 1e-5f, y.data());
  layer_norm(x.data(), 100, w.data(), b.data(), 1e-5f, x.data());
  EXPECT_EQ(x, y);
}

TEST(GroupNorm, EachGroupIsALayerNorm) {
  const int64_t G = 3, n = 17;
  const auto x = random_vector(size_t(G * n), 7), w = random_vector(size_t(G * n), 8), b = random_vector(size_t(G * n), 9);
  std::vector<float> y(static_cast<size_t>(G * n)), ref(static_cast<size_t>(n));
  group_norm(x.data(), G, n, w.data(), b.data(), 64e-5f, y.data());
  for (int64_t g = 0; g < G; ++g) {
    layer_norm(x.data() + g * n, n, w.data() + g * n, b.data() + g * n, 64e-5f, ref.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(y[size_t(g * n + i)], ref[size_t(i)]);
  }
}

TEST(L2Normalize, UnitNormAndZeroVector) {
  auto x = random_vector(2 * 9, 10);
  std::fill(x.begin() + 9, x.end(), 0.f);  // second group all zero: divided by eps, stays 0
  std::vector<float> y(x.size());
  l2_normalize_groups(x.data(), 2, 9, 1e-12f, y.data());
  double ss = 0;
  for (int i = 0; i < 9; ++i) ss += double(y[size_t(i)]) * y[size_t(i)];
  EXPECT_NEAR(ss, 1.0, 1e-6);
  for (int i = 9; i < 18; ++i) EXPECT_EQ(y[size_t(i)], 0.f);
}

// The official formulation, in double: S = S*diag(w) + S@(-kk)(kk*a)^T + v k^T; y = S@r.
void reference_step(std::vector<double>& S, int64_t H, int64_t N, const float* r, const float* w,
                    const float* k, const float* v, const float* kk, const float* a, std::vector<double>& y) {
  for (int64_t h = 0; h < H; ++h) {
    double* s = S.data() + h * N * N;
    const int64_t o = h * N;
    std::vector<double> sa(size_t(N), 0.0);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) sa[size_t(i)] += s[i * N + j] * -double(kk[o + j]);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j)
        s[i * N + j] = s[i * N + j] * w[o + j] + sa[size_t(i)] * double(kk[o + j]) * a[o + j] +
                       double(v[o + i]) * k[o + j];
    for (int64_t i = 0; i < N; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < N; ++j) acc += s[i * N + j] * r[o + j];
      y[size_t(o + i)] = acc;
    }
  }
}

TEST(Wkv7, SequenceMatchesReferenceOverManySteps) {
  for (int64_t N : {1, 3, 16, 64}) {
    const int64_t H = 2, C = H * N, T = 9;
    auto r = random_vector(size_t(T * C), 1), k = random_vector(size_t(T * C), 2), v = random_vector(size_t(T * C), 3);
    auto w = random_vector(size_t(T * C), 4), a = random_vector(size_t(T * C), 5), kk = random_vector(size_t(T * C), 6);
    for (auto& x : w) x = std::exp(-0.606531f / (1.f + std::exp(-x)));  // decay in (0.54, 1)
    for (auto& x : a) x = 1.f / (1.f + std::exp(-x));
    for (int64_t t = 0; t < T; ++t) l2_normalize_groups(kk.data() + t * C, H, N, 1e-12f, kk.data() + t * C);

    std::vector<float> S(size_t(H * N * N), 0.f), y(static_cast<size_t>(T * C));
    wkv7_sequence(S.data(), H, N, T, r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), y.data());

    std::vector<double> Sref(size_t(H * N * N), 0.0), yref(static_cast<size_t>(C));
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * C;
      reference_step(Sref, H, N, r.data() + o, w.data() + o, k.data() + o, v.data() + o, kk.data() + o,
                     a.data() + o, yref);
      for (int64_t i = 0; i < C; ++i) ASSERT_NEAR(y[size_t(o + i)], yref[size_t(i)], 1e-4 * double(N)) << N;
    }
    for (size_t i = 0; i < S.size(); ++i) ASSERT_NEAR(S[i], Sref[i], 1e-4 * double(N));
  }
}

}  // namespace
}  // namespace aviary::ops
