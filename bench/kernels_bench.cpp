// Kernel micro-benchmarks: the plain scalar reference against the SIMD kernels
// (the best variant this CPU runs, or AVIARY_SIMD), on 1 and 2 threads.
//   GEMV (T = 1):  bytes_per_second = weight bytes read per second
//   GEMM (T = 64): flops = multiply-adds x 2 per second
//   Wkv7, Wkv5 (H heads of 64, T tokens): tokens per second
// Run: build/release/bench/kernels_bench [--benchmark_filter=Gemv]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/linear.h"
#include "ops/reference.h"
#include "ops/simd.h"
#include "ops/wkv5.h"
#include "ops/wkv7.h"
#include "util/dtype.h"
#include "util/thread_pool.h"

namespace {

using aviary::DType;
namespace ops = aviary::ops;

enum Impl { kReference = 0, kSimd = 1 };

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

void set_label(benchmark::State& state, Impl impl, int threads) {
  state.SetLabel(impl == kReference ? "reference" : ops::simd_target() + " x" + std::to_string(threads));
}

// args: dtype, n (rows = cols), T, impl, threads
void BM_Linear(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const int64_t n = state.range(1), T = state.range(2);
  const auto impl = Impl(state.range(3));
  const int threads = int(state.range(4));
  aviary::set_default_thread_count(threads);
  const auto w = random_weights(n * n, t);
  const ops::Matrix W{w.data(), t, n, n};
  std::vector<float> x(static_cast<size_t>(T * n), 0.5f), y(static_cast<size_t>(T * n));
  for (auto _ : state) {
    if (impl == kReference) ops::reference::linear(x.data(), T, W, y.data());
    else ops::linear(x.data(), T, W, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.counters["flops"] = benchmark::Counter(double(2 * n * n * T) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
  set_label(state, impl, threads);
}

void LinearArgs(benchmark::internal::Benchmark* b, int64_t T) {
  b->ArgNames({"dtype", "n", "T", "simd", "threads"});
  for (int t : {int(DType::F32), int(DType::F16), int(DType::BF16)})
    for (int64_t n : {768, 2048, 4096}) {
      b->Args({t, n, T, kReference, 1});
      b->Args({t, n, T, kSimd, 1});
      b->Args({t, n, T, kSimd, 2});
    }
}
BENCHMARK(BM_Linear)->Name("Gemv")->Apply([](auto* b) { LinearArgs(b, 1); })->UseRealTime();
BENCHMARK(BM_Linear)->Name("Gemm")->Apply([](auto* b) { LinearArgs(b, 64); })->UseRealTime();

// args: H (N = 64), T, impl, threads
void BM_Wkv7(benchmark::State& state) {
  const int64_t H = state.range(0), T = state.range(1), N = 64, C = H * N;
  const auto impl = Impl(state.range(2));
  const int threads = int(state.range(3));
  aviary::set_default_thread_count(threads);
  std::vector<float> S(size_t(H * N * N), 0.01f), r(size_t(T * C), 0.1f), w(size_t(T * C), 0.9f),
      k(size_t(T * C), 0.1f), v(size_t(T * C), 0.2f), kk(size_t(T * C), 0.05f), a(size_t(T * C), 0.5f),
      y(size_t(T * C));
  for (auto _ : state) {
    if (impl == kReference)
      ops::reference::wkv7_sequence(S.data(), H, N, T, r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(),
                                    y.data());
    else
      ops::wkv7_sequence(S.data(), H, N, T, r.data(), w.data(), k.data(), v.data(), kk.data(), a.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens"] = benchmark::Counter(double(T) * double(state.iterations()), benchmark::Counter::kIsRate);
  set_label(state, impl, threads);
}

// args: H (N = 64), T, impl, threads
void BM_Wkv5(benchmark::State& state) {
  const int64_t H = state.range(0), T = state.range(1), N = 64, C = H * N;
  const auto impl = Impl(state.range(2));
  const int threads = int(state.range(3));
  aviary::set_default_thread_count(threads);
  std::vector<float> S(size_t(H * N * N), 0.01f), r(size_t(T * C), 0.1f), w(size_t(T * C), 0.9f),
      k(size_t(T * C), 0.1f), v(size_t(T * C), 0.2f), u(size_t(C), 0.3f), y(size_t(T * C));
  for (auto _ : state) {
    if (impl == kReference)
      ops::reference::wkv5_sequence(S.data(), H, N, T, r.data(), k.data(), v.data(), w.data(), C, u.data(), y.data());
    else
      ops::wkv5_sequence(S.data(), H, N, T, r.data(), k.data(), v.data(), w.data(), C, u.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens"] = benchmark::Counter(double(T) * double(state.iterations()), benchmark::Counter::kIsRate);
  set_label(state, impl, threads);
}

void WkvArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"H", "T", "simd", "threads"});
  for (int64_t H : {12, 32})
    for (int64_t T : {1, 16}) {
      b->Args({H, T, kReference, 1});
      b->Args({H, T, kSimd, 1});
      b->Args({H, T, kSimd, 2});
    }
}
BENCHMARK(BM_Wkv7)->Name("Wkv7")->Apply(WkvArgs)->UseRealTime();
BENCHMARK(BM_Wkv5)->Name("Wkv5")->Apply(WkvArgs)->UseRealTime();

}  // namespace
