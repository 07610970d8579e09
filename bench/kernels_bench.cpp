// Kernel micro-benchmarks: matrix products per weight type and the RWKV-7
// recurrence. Run: build/release/bench/kernels_bench
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/linear.h"
#include "ops/wkv7.h"
#include "util/dtype.h"

namespace {

using aviary::DType;

std::vector<uint8_t> random_weights(int64_t n, DType t) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 0.05f);
  std::vector<uint8_t> buf(size_t(n) * aviary::dtype_size(t));
  for (int64_t i = 0; i < n; ++i) {
    const float v = d(rng);
    if (t == DType::F32) reinterpret_cast<float*>(buf.data())[i] = v;
    else if (t == DType::F16) reinterpret_cast<uint16_t*>(buf.data())[i] = aviary::f32_to_f16(v);
    else reinterpret_cast<uint16_t*>(buf.data())[i] = aviary::f32_to_bf16(v);
  }
  return buf;
}

// args: dtype, rows (= cols), T
void BM_Linear(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const int64_t n = state.range(1), T = state.range(2);
  const auto w = random_weights(n * n, t);
  const aviary::ops::Matrix W{w.data(), t, n, n};
  std::vector<float> x(static_cast<size_t>(T * n), 0.5f), y(static_cast<size_t>(T * n));
  for (auto _ : state) {
    aviary::ops::linear(x.data(), T, W, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.counters["flops"] = benchmark::Counter(double(2 * n * n * T) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Linear)
    ->ArgNames({"dtype", "n", "T"})
    ->ArgsProduct({{int(DType::F32), int(DType::F16), int(DType::BF16)}, {768, 2048}, {1, 64}});

void BM_Wkv7Step(benchmark::State& state) {
  const int64_t H = state.range(0), N = 64, C = H * N;
  std::vector<float> S(size_t(H * N * N), 0.01f), r(size_t(C), 0.1f), w(size_t(C), 0.9f), k(size_t(C), 0.1f),
      v(size_t(C), 0.2f), kk(size_t(C), 0.05f), a(size_t(C), 0.5f), y(static_cast<size_t>(C));
  for (auto _ : state) {
    aviary::ops::wkv7_step(S.data(), H, N, r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
}
BENCHMARK(BM_Wkv7Step)->Arg(12)->Arg(32);

}  // namespace
