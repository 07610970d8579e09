// The RWKV-4 and RWKV-5/6 recurrences against direct double-precision
// implementations of their textbook definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/wkv4.h"
#include "ops/wkv5.h"

namespace aviary::ops {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float sd = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// RWKV-4 without the max trick: y_t = (sum_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) / (same with 1).
TEST(Wkv4, MatchesTheUnstabilisedDefinition) {
  const int64_t C = 7, T = 12;
  auto k = random_vector(static_cast<size_t>(T * C), 1), v = random_vector(static_cast<size_t>(T * C), 2);
  auto w = random_vector(static_cast<size_t>(C), 3), u = random_vector(static_cast<size_t>(C), 4);
  for (auto& x : w) x = -std::exp(x);  // the loader stores -exp(time_decay)
  std::vector<float> aa(static_cast<size_t>(C), 0.f), bb(static_cast<size_t>(C), 0.f), pp(static_cast<size_t>(C), -1e30f), y(static_cast<size_t>(T * C));
  wkv4_sequence(aa.data(), bb.data(), pp.data(), C, T, w.data(), u.data(), k.data(), v.data(), y.data());
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < T; ++t) {
      double num = std::exp(double(u[size_t(c)]) + k[size_t(t * C + c)]) * v[size_t(t * C + c)];
      double den = std::exp(double(u[size_t(c)]) + k[size_t(t * C + c)]);
      for (int64_t i = 0; i < t; ++i) {
        const double e = std::exp(double(t - 1 - i) * w[size_t(c)] + k[size_t(i * C + c)]);
        num += e * v[size_t(i * C + c)];
        den += e;
      }
      ASSERT_NEAR(y[size_t(t * C + c)], num / den, 1e-5) << "c=" << c << " t=" << t;
    }
}

TEST(Wkv4, LargeExponentsStayFinite) {
  const int64_t C = 3, T = 4;
  std::vector<float> k(static_cast<size_t>(T * C), 80.f), v(static_cast<size_t>(T * C), 1.f), w(static_cast<size_t>(C), -0.5f), u(static_cast<size_t>(C), 50.f);
  std::vector<float> aa(static_cast<size_t>(C), 0.f), bb(static_cast<size_t>(C), 0.f), pp(static_cast<size_t>(C), -1e30f), y(static_cast<size_t>(T * C));
  wkv4_sequence(aa.data(), bb.data(), pp.data(), C, T, w.data(), u.data(), k.data(), v.data(), y.data());
  for (float x : y) EXPECT_NEAR(x, 1.f, 1e-6);  // every v is 1: a weighted mean of ones
}

// RWKV-5/6, per head: y_j = sum_i r_i (u_i k_i v_j + S_ij);  S_ij <- k_i v_j + w_i S_ij.
void reference(std::vector<double>& S, int64_t H, int64_t N, const float* r, const float* k, const float* v,
               const float* w, const float* u, std::vector<double>& y) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < N; ++i) {
        const int64_t c = h * N + i;
        acc += double(r[c]) * (double(u[c]) * k[c] * v[h * N + j] + S[size_t((h * N + i) * N + j)]);
      }
      y[size_t(h * N + j)] = acc;
    }
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double& s = S[size_t((h * N + i) * N + j)];
        s = double(k[h * N + i]) * v[h * N + j] + double(w[h * N + i]) * s;
      }
}

class Wkv5 : public ::testing::TestWithParam<std::tuple<int64_t, bool>> {};

TEST_P(Wkv5, MatchesReference) {
  const auto [N, per_token_decay] = GetParam();
  const int64_t H = 3, C = H * N, T = 10;
  auto r = random_vector(static_cast<size_t>(T * C), 1), k = random_vector(static_cast<size_t>(T * C), 2), v = random_vector(static_cast<size_t>(T * C), 3);
  auto u = random_vector(static_cast<size_t>(C), 5);
  auto w = random_vector(static_cast<size_t>(per_token_decay ? T * C : C), 4);
  for (auto& x : w) x = std::exp(-std::exp(x));
  std::vector<float> S(static_cast<size_t>(H * N * N), 0.f), y(static_cast<size_t>(T * C));
  wkv5_sequence(S.data(), H, N, T, r.data(), k.data(), v.data(), w.data(), per_token_decay ? C : 0, u.data(),
                y.data());
  std::vector<double> Sref(S.size(), 0.0), yref(static_cast<size_t>(C));
  for (int64_t t = 0; t < T; ++t) {
    reference(Sref, H, N, r.data() + t * C, k.data() + t * C, v.data() + t * C,
              w.data() + (per_token_decay ? t * C : 0), u.data(), yref);
    for (int64_t c = 0; c < C; ++c) ASSERT_NEAR(y[size_t(t * C + c)], yref[size_t(c)], 1e-4 * double(N));
  }
  for (size_t i = 0; i < S.size(); ++i) ASSERT_NEAR(S[i], Sref[i], 1e-4 * double(N));
}

INSTANTIATE_TEST_SUITE_P(HeadSizes, Wkv5, ::testing::Combine(::testing::Values(1, 5, 16, 64), ::testing::Bool()));

}  // namespace
}  // namespace aviary::ops
