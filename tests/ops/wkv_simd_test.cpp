// Every SIMD variant of the RWKV-5/6 and RWKV-7 recurrences against the plain
// scalar reference, over odd head sizes, single- and multi-threaded; and the
// AVIARY_SIMD environment variable.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "ops/norm.h"
#include "ops/reference.h"
#include "ops/wkv5.h"
#include "ops/wkv7.h"
#include "simd_test_util.h"
#include "util/thread_pool.h"

namespace aviary::ops {
namespace {

using namespace aviary::ops::test;

constexpr int64_t kHeadSizes[] = {1, 3, 7, 17, 33, 64, 130};

// Inputs of T tokens of H heads of size N, in the ranges the models feed.
struct Wkv7Inputs {
  std::vector<float> r, w, k, v, kk, a;
  Wkv7Inputs(int64_t H, int64_t N, int64_t T, uint32_t seed) {
    const size_t n = size_t(T * H * N);
    r = random_vector(n, seed), k = random_vector(n, seed + 1), v = random_vector(n, seed + 2);
    w = random_vector(n, seed + 3), a = random_vector(n, seed + 4), kk = random_vector(n, seed + 5);
    for (auto& x : w) x = std::exp(-0.606531f / (1.f + std::exp(-x)));  // decay in (0.54, 1)
    for (auto& x : a) x = 1.f / (1.f + std::exp(-x));
    for (int64_t t = 0; t < T; ++t) l2_normalize_groups(kk.data() + t * H * N, H, N, 1e-12f, kk.data() + t * H * N);
  }
};

// |a - b| within tol * (1 + max|b|) everywhere.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  const double scale = 1.0 + max_abs(b);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol * scale) << what << " i=" << i;
}

using SimdWkv = ForcedSimdTest<std::string>;

TEST_P(SimdWkv, Wkv7MatchesReference) {
  for (int64_t N : kHeadSizes)
    for (int64_t H : {1, 3}) {
      const int64_t T = 6, C = H * N;
      const Wkv7Inputs in(H, N, T, uint32_t(N));
      // A non-zero starting state, as after a prompt.
      std::vector<float> S = random_vector(size_t(H * N * N), 99, 0.f, 0.3f), Sref = S;
      std::vector<float> y(size_t(T * C)), yref(y.size());
      wkv7_sequence(S.data(), H, N, T, in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(),
                    in.a.data(), y.data());
      reference::wkv7_sequence(Sref.data(), H, N, T, in.r.data(), in.w.data(), in.k.data(), in.v.data(),
                               in.kk.data(), in.a.data(), yref.data());
      const double tol = 1e-6 * std::sqrt(double(N)) * double(T);
      expect_close(y, yref, tol, "y N=" + std::to_string(N));
      expect_close(S, Sref, tol, "S N=" + std::to_string(N));
    }
}

TEST_P(SimdWkv, Wkv5MatchesReference) {
  for (int64_t N : kHeadSizes)
    for (int64_t H : {1, 3})
      for (bool per_token_decay : {false, true}) {
        const int64_t T = 6, C = H * N;
        auto r = random_vector(size_t(T * C), 1), k = random_vector(size_t(T * C), 2), v = random_vector(size_t(T * C), 3);
        auto u = random_vector(size_t(C), 5), w = random_vector(size_t(per_token_decay ? T * C : C), 4);
        for (auto& x : w) x = std::exp(-std::exp(x));
        std::vector<float> S = random_vector(size_t(H * N * N), 98, 0.f, 0.3f), Sref = S;
        std::vector<float> y(size_t(T * C)), yref(y.size());
        const int64_t stride = per_token_decay ? C : 0;
        wkv5_sequence(S.data(), H, N, T, r.data(), k.data(), v.data(), w.data(), stride, u.data(), y.data());
        reference::wkv5_sequence(Sref.data(), H, N, T, r.data(), k.data(), v.data(), w.data(), stride, u.data(),
                                 yref.data());
        const double tol = 1e-6 * std::sqrt(double(N)) * double(T);
        expect_close(y, yref, tol, "y N=" + std::to_string(N));
        expect_close(S, Sref, tol, "S N=" + std::to_string(N));
      }
}

// Heads are shared out over threads: results must not depend on how many,
// and a sequence must equal its tokens one at a time, bit for bit.
TEST_P(SimdWkv, ThreadCountAndChunkingDoNotChangeResults) {
  const int before = default_thread_count();
  const int64_t H = 16, N = 64, T = 5, C = H * N;  // a sequence is split over threads, a step is not
  const Wkv7Inputs in(H, N, T, 7);
  std::vector<float> S_first, y_first;
  for (int threads : {1, 2, 3}) {
    set_default_thread_count(threads);
    std::vector<float> S(size_t(H * N * N), 0.f), y(size_t(T * C)), S1 = S, y1 = y;
    wkv7_sequence(S.data(), H, N, T, in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(), in.a.data(),
                  y.data());
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * C;
      wkv7_step(S1.data(), H, N, in.r.data() + o, in.w.data() + o, in.k.data() + o, in.v.data() + o,
                in.kk.data() + o, in.a.data() + o, y1.data() + o);
    }
    EXPECT_EQ(S, S1);
    EXPECT_EQ(y, y1);
    if (S_first.empty()) S_first = S, y_first = y;
    EXPECT_EQ(S, S_first) << threads;
    EXPECT_EQ(y, y_first) << threads;

    std::vector<float> S5(size_t(H * N * N), 0.f), y5(size_t(T * C)), S5b = S5, y5b = y5;
    wkv5_sequence(S5.data(), H, N, T, in.r.data(), in.k.data(), in.v.data(), in.w.data(), C, in.a.data(), y5.data());
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * C;
      wkv5_sequence(S5b.data(), H, N, 1, in.r.data() + o, in.k.data() + o, in.v.data() + o, in.w.data() + o, C,
                    in.a.data(), y5b.data() + o);
    }
    EXPECT_EQ(S5, S5b);
    EXPECT_EQ(y5, y5b);
  }
  set_default_thread_count(before);
}

// A decode step's heads taken in pieces (as the model shares them out with
// their other per-head work) give the whole step's state and output bit for
// bit, and a piece touches only its own heads.
TEST_P(SimdWkv, StepHeadsInPiecesEqualTheWholeStep) {
  for (int64_t N : {7, 64}) {
    const int64_t H = 5, C = H * N;
    const Wkv7Inputs in(H, N, 1, 3);
    const std::vector<float> S0 = random_vector(size_t(H * N * N), 4, 0.f, 0.3f);
    std::vector<float> S = S0, y(static_cast<size_t>(C));
    wkv7_step(S.data(), H, N, in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(), in.a.data(),
              y.data());
    std::vector<float> Sp = S0, yp(size_t(C), -3.f);
    wkv7_step_heads(Sp.data(), H, N, in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(), in.a.data(),
                    yp.data(), 1, 3);
    for (int64_t i = 0; i < C; ++i) {
      const bool mine = i >= N && i < 3 * N;
      ASSERT_EQ(yp[size_t(i)], mine ? y[size_t(i)] : -3.f) << "N=" << N << " i=" << i;
      for (int64_t j = 0; j < N; ++j)
        ASSERT_EQ(Sp[size_t(i * N + j)], mine ? S[size_t(i * N + j)] : S0[size_t(i * N + j)]) << "N=" << N;
    }
    for (auto [h0, h1] : {std::pair<int64_t, int64_t>{0, 1}, {3, 5}})
      wkv7_step_heads(Sp.data(), H, N, in.r.data(), in.w.data(), in.k.data(), in.v.data(), in.kk.data(),
                      in.a.data(), yp.data(), h0, h1);
    EXPECT_EQ(Sp, S) << "N=" << N;
    EXPECT_EQ(yp, y) << "N=" << N;
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SimdWkv, ::testing::ValuesIn(simd_variants()));

// Runs this test binary again with AVIARY_SIMD=value, running only the
// ChildReportsExpectedVariant test; returns its exit status and stderr.
std::pair<int, std::string> run_child(const std::string& value, const std::string& expected) {
  char err_path[] = "/tmp/aviary_simd_test_XXXXXX";
  const int err_fd = mkstemp(err_path);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err_fd, 2);
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    setenv("AVIARY_SIMD", value.c_str(), 1);
    setenv("AVIARY_SIMD_EXPECT", expected.c_str(), 1);
    execl("/proc/self/exe", "test_ops", "--gtest_filter=SimdEnvironment.ChildReportsExpectedVariant", nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(err_fd);
  std::ifstream f(err_path);
  std::stringstream ss;
  ss << f.rdbuf();
  unlink(err_path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ss.str()};
}

TEST(SimdEnvironment, ChildReportsExpectedVariant) {
  const char* expected = std::getenv("AVIARY_SIMD_EXPECT");
  if (expected == nullptr) GTEST_SKIP() << "run by SimdEnvironment.ForcesTheVariant";
  EXPECT_EQ(simd_target(), expected);
}

TEST(SimdEnvironment, ForcesTheVariant) {
  const std::vector<std::string> all = simd_targets();
  for (const std::string& name : {all[all.size() - 2], all.back()}) {  // the most basic target, "reference"
    const auto [status, err] = run_child(name, name);
    EXPECT_EQ(status, 0) << name << "\n" << err;
    EXPECT_EQ(err.find("warning"), std::string::npos) << err;
  }
  const auto [status, err] = run_child("no-such-cpu", all.front());
  EXPECT_EQ(status, 0) << err;
  EXPECT_NE(err.find("AVIARY_SIMD=no-such-cpu is not available"), std::string::npos) << err;
}

}  // namespace
}  // namespace aviary::ops
