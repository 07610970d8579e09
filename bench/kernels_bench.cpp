// Kernel micro-benchmarks: the plain scalar reference against the SIMD kernels
// (the best variant this CPU runs, or AVIARY_SIMD), on 1 and 2 threads.
//   GEMV (T = 1):  bytes_per_second = weight bytes read per second (stored
//                  size: q4_0 is 4.5 bits a weight), flops as for GEMM
//   GEMM (T = 64): flops = multiply-adds x 2 per second
//   (weight types f32, f16, bf16, q8_0, q4_0, q4_k: dtype 0..5)
//   Wkv7, Wkv5 (H heads of 64, T tokens): tokens per second
//   simd 2: the kernels on the panels linear_pack makes at load (as models run)
//   FfnValue, FfnValuePrefill: the sparse feed-forward against the dense product
//   QuantizeActivations (n values): a decode product's activations quantized:
//                  the reference loops, the SIMD int16 values, the VNNI panels' bytes
// Run: build/release/bench/kernels_bench [--benchmark_filter=Gemv]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ops/linear.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "ops/quant_dot_vnni.h"
#include "ops/reference.h"
#include "ops/simd.h"
#include "ops/sparse_ffn.h"
#include "ops/wkv5.h"
#include "ops/wkv7.h"
#include "util/dtype.h"
#include "util/page_buffer.h"
#include "util/thread_pool.h"

namespace {

using aviary::DType;
namespace ops = aviary::ops;

// kPanels: the SIMD kernels on the copy linear_pack makes at load (float
// panels, or Q8_0/Q4_0 VNNI panels), as the models multiply.
enum Impl { kReference = 0, kSimd = 1, kPanels = 2 };

// rows x cols N(0, 0.05) weights stored as t (block types through quantize_row).
std::vector<uint8_t> random_weights(int64_t rows, int64_t cols, DType t) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 0.05f);
  std::vector<float> v(size_t(rows * cols));
  for (float& x : v) x = d(rng);
  std::vector<uint8_t> buf(size_t(rows) * aviary::dtype_bytes(t, cols));
  ops::quantize_row(t, v.data(), rows * cols, buf.data());
  return buf;
}

void set_label(benchmark::State& state, Impl impl, int threads) {
  state.SetLabel(impl == kReference ? "reference"
                                    : ops::simd_target() + (impl == kPanels ? " panels" : "") + " x" +
                                          std::to_string(threads));
}

// args: dtype, rows (out), cols (in), T, impl, threads
void BM_Linear(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2), T = state.range(3);
  const auto impl = Impl(state.range(4));
  const int threads = int(state.range(5));
  aviary::set_default_thread_count(threads);
  const auto w = random_weights(rows, cols, t);
  ops::Matrix W{w.data(), t, rows, cols};
  aviary::PageBuffer panels;
  if (impl == kPanels) {
    if (ops::linear_pack_bytes(W) == 0) return state.SkipWithError("no panels for this type on this CPU");
    panels = aviary::PageBuffer(ops::linear_pack_bytes(W));
    ops::linear_pack(W, panels.data());
    W.packed = panels.data();
  }
  std::vector<float> x(static_cast<size_t>(T * cols), 0.5f), y(static_cast<size_t>(T * rows));
  for (auto _ : state) {
    if (impl == kReference) ops::reference::linear(x.data(), T, W, y.data());
    else ops::linear(x.data(), T, W, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.counters["flops"] = benchmark::Counter(double(2 * rows * cols * T) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
  set_label(state, impl, threads);
}

// Every weight type on the shapes of a small and a large RWKV (768 and 2048
// wide, the 2048 model's FFN value matrix 2048 x 7168).
void LinearArgs(benchmark::internal::Benchmark* b, int64_t T) {
  b->ArgNames({"dtype", "rows", "cols", "T", "simd", "threads"});
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{768, 768}, {2048, 2048}, {2048, 7168}}) {
      // The scalar reference on the largest prefill would take seconds per run.
      if (T == 1 || rows * cols < 2048 * 7168) b->Args({int(t), rows, cols, T, kReference, 1});
      for (Impl impl : {kSimd, kPanels}) {
        if (impl == kPanels && t == DType::Q4_K) continue;  // no panel layout
        b->Args({int(t), rows, cols, T, impl, 1});
        b->Args({int(t), rows, cols, T, impl, 2});
      }
    }
}
BENCHMARK(BM_Linear)->Name("Gemv")->Apply([](auto* b) { LinearArgs(b, 1); })->UseRealTime();
BENCHMARK(BM_Linear)->Name("Gemm")->Apply([](auto* b) { LinearArgs(b, 64); })->UseRealTime();

// The feed-forward value product of one decode row, h = relu(k)^2 with a
// share of exact zeros: dense ops::linear on the stored [C, F] rows, dense on
// the float panels, and ops::sparse_linear on the panels (model/blocks.h
// FeedForwardValue). FfnValuePrefill: the T = 64 product, rows or panels.
// bytes_per_second: the whole matrix per product. Like the layers of a model,
// each run takes the next of enough copies of the matrix (each with its own
// activations) to exceed the CPU caches: with one copy the few columns a
// 90%-sparse product reads would stay cached.
enum FfnPath { kDenseRows = 0, kDensePanels = 1, kSparsePanels = 2 };
constexpr size_t kColdBytes = size_t(96) << 20;

// args: C (out), F (in), zero percent, path, threads, T
void BM_FfnValue(benchmark::State& state) {
  const int64_t C = state.range(0), F = state.range(1), zero_pct = state.range(2), T = state.range(5);
  const auto path = FfnPath(state.range(3));
  const int threads = int(state.range(4));
  aviary::set_default_thread_count(threads);
  const auto w = random_weights(C, F, DType::F16);
  const ops::Matrix stored{w.data(), DType::F16, C, F};
  if (path != kDenseRows && ops::linear_pack_bytes(stored) == 0)
    return state.SkipWithError("no float panels on this CPU");
  const size_t copies = std::max<size_t>(1, kColdBytes / w.size());
  std::vector<std::vector<uint8_t>> rows;
  std::vector<aviary::PageBuffer> panels;
  std::vector<ops::Matrix> matrix;
  std::vector<std::vector<float>> h(copies);
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> pct(0, 99);
  std::normal_distribution<float> d(0.f, 1.f);
  for (size_t i = 0; i < copies; ++i) {
    ops::Matrix m{rows.emplace_back(w).data(), DType::F16, C, F};
    if (path != kDenseRows) {
      m.packed = panels.emplace_back(ops::linear_pack_bytes(m)).data();
      ops::linear_pack(m, panels.back().data());
      rows.back() = {};  // the panels replace the rows, as at load
    }
    matrix.push_back(m);
    h[i].resize(static_cast<size_t>(T * F));
    for (float& x : h[i]) x = pct(rng) < zero_pct ? 0.f : d(rng) * d(rng);
  }
  std::vector<float> y(static_cast<size_t>(T * C));
  size_t i = 0;
  for (auto _ : state) {
    if (path == kSparsePanels) ops::sparse_linear(h[i].data(), F, matrix[i], y.data());
    else ops::linear(h[i].data(), T, matrix[i], y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % copies;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  static const char* names[] = {"dense rows", "dense panels", "sparse panels"};
  state.SetLabel(std::string(names[path]) + ", " + ops::simd_target() + " x" + std::to_string(threads));
}

void FfnValueArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "F", "zero%", "path", "threads", "T"});
  for (auto [C, F] : {std::pair<int64_t, int64_t>{768, 3072}, {2048, 7168}})
    for (int threads : {1, 2}) {
      b->Args({C, F, 50, kDenseRows, threads, 1});
      b->Args({C, F, 50, kDensePanels, threads, 1});
      for (int zero_pct : {50, 90}) b->Args({C, F, zero_pct, kSparsePanels, threads, 1});
    }
}
void FfnValuePrefillArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "F", "zero%", "path", "threads", "T"});
  for (auto [C, F] : {std::pair<int64_t, int64_t>{768, 3072}, {2048, 7168}})
    for (FfnPath path : {kDenseRows, kDensePanels}) b->Args({C, F, 50, path, 2, 64});
}
BENCHMARK(BM_FfnValue)->Name("FfnValue")->Apply(FfnValueArgs)->UseRealTime();
BENCHMARK(BM_FfnValue)->Name("FfnValuePrefill")->Apply(FfnValuePrefillArgs)->UseRealTime();

// Decode's products as a model streams them: each run multiplies one row by
// the next of enough 2048 x 2048 copies (panels as linear_pack makes them) to
// span 512 MB, so every weight comes from memory, not a cache.
// bytes_per_second against `aviary bench --membw` is the kernel's own share of
// the bandwidth bound, without the rest of a model's token.
// args: dtype, threads
void BM_GemvCold(benchmark::State& state) {
  const auto t = DType(state.range(0));
  const int64_t rows = 2048, cols = 2048;
  aviary::set_default_thread_count(int(state.range(1)));
  const auto w = random_weights(rows, cols, t);
  const ops::Matrix stored{w.data(), t, rows, cols};
  if (ops::linear_pack_bytes(stored) == 0) return state.SkipWithError("no panels for this type on this CPU");
  const size_t bytes = ops::linear_pack_bytes(stored), copies = std::max<size_t>(2, (size_t(512) << 20) / bytes);
  std::vector<aviary::PageBuffer> panels;
  std::vector<ops::Matrix> matrix;
  for (size_t i = 0; i < copies; ++i) {
    ops::Matrix m = stored;
    m.packed = panels.emplace_back(bytes).data();
    if (i == 0) ops::linear_pack(m, panels[0].data());
    else std::memcpy(panels[i].data(), panels[0].data(), bytes);  // the same panels, elsewhere in memory
    matrix.push_back(m);
  }
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  size_t i = 0;
  for (auto _ : state) {
    ops::linear(x.data(), 1, matrix[i], y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % copies;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  set_label(state, kPanels, int(state.range(1)));
}
BENCHMARK(BM_GemvCold)
    ->Name("GemvCold")
    ->ArgNames({"dtype", "threads"})
    ->ArgsProduct({{int(DType::F32), int(DType::F16), int(DType::Q8_0), int(DType::Q4_0)}, {1, 2}})
    ->UseRealTime();

// The RWKV-7 LoRA factors of the 1.5B shape (C = 2048; ranks 96, 96, 256,
// 64, as aviary synth and the official models have them), fp32 in float panels as the model keeps them: per layer the four downs
// [rank, C] in one ops::linear_many, then the four ups [C, rank] in another,
// for T activation rows (128: the model's prefill chunk). Each run takes the
// next of 24 layers' copies (113 MB), cold in memory as in the model.
// args: T, threads
void BM_Lora(benchmark::State& state) {
  const int64_t T = state.range(0), C = 2048, kLayers = 24;
  aviary::set_default_thread_count(int(state.range(1)));
  const int64_t ranks[] = {96, 96, 256, 64}, rank_sum = 512;
  std::vector<aviary::PageBuffer> panels;
  std::vector<ops::Matrix> down, up;  // layer-major, 4 per layer
  std::vector<std::vector<uint8_t>> stored;
  for (int64_t l = 0; l < kLayers; ++l)
    for (int64_t r : ranks)
      for (auto [rows, cols] : {std::pair{r, C}, std::pair{C, r}}) {
        stored.push_back(random_weights(rows, cols, DType::F32));
        ops::Matrix W{stored.back().data(), DType::F32, rows, cols};
        if (ops::linear_pack_bytes(W) > 0) {
          panels.emplace_back(ops::linear_pack_bytes(W));
          ops::linear_pack(W, panels.back().data());
          W.packed = panels.back().data();
          stored.back() = {};  // the model keeps only the panels resident
          W.data = nullptr;
        }
        (rows == r ? down : up).push_back(W);
      }
  std::vector<float> x(size_t(4 * T * C), 0.5f), mid(size_t(T * rank_sum)), y(size_t(4 * T * C));
  std::vector<ops::LinearJob> downs, ups;
  for (int64_t l = 0; l < kLayers; ++l) {
    int64_t m = 0;
    for (size_t i = 0; i < 4; ++i) {
      downs.push_back({x.data() + i * T * C, T, &down[size_t(l * 4) + i], mid.data() + m});
      ups.push_back({mid.data() + m, T, &up[size_t(l * 4) + i], y.data() + i * T * C});
      m += T * ranks[i];
    }
  }
  int64_t layer = 0;
  for (auto _ : state) {
    ops::linear_many(std::span(downs).subspan(size_t(layer * 4), 4));
    ops::linear_many(std::span(ups).subspan(size_t(layer * 4), 4));
    benchmark::DoNotOptimize(y.data());
    layer = (layer + 1) % kLayers;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * 2 * C * rank_sum * 4);
  state.counters["flops"] =
      benchmark::Counter(double(4 * C * rank_sum * T) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Lora)->Name("Lora")->ArgNames({"T", "threads"})->ArgsProduct({{1, 128, 512}, {1, 2}})->UseRealTime();

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
    for (int64_t T : {1, 16, 512}) {  // 512: a prefill chunk, its inputs beyond L2
      if (T < 512) b->Args({H, T, kReference, 1});
      b->Args({H, T, kSimd, 1});
      b->Args({H, T, kSimd, 2});
    }
}
BENCHMARK(BM_Wkv7)->Name("Wkv7")->Apply(WkvArgs)->UseRealTime();
BENCHMARK(BM_Wkv5)->Name("Wkv5")->Apply(WkvArgs)->UseRealTime();

}  // namespace

namespace {

// One hand-off to the pool with (almost) no work: the fixed cost a decode
// step pays for every parallel product or loop it shares out. args: split
// (0 static, 1 balanced), threads
void BM_PoolHandoff(benchmark::State& state) {
  const auto split = state.range(0) ? aviary::Split::Balanced : aviary::Split::Static;
  aviary::set_default_thread_count(int(state.range(1)));
  std::vector<int64_t> sink(64 * 8);
  for (auto _ : state) {
    aviary::default_pool().parallel_for(
        1024, [&](int64_t b, int64_t e) { sink[size_t(b / 128) * 8] += e - b; }, split);
    benchmark::DoNotOptimize(sink.data());
  }
}
BENCHMARK(BM_PoolHandoff)->Name("PoolHandoff")->ArgNames({"balanced", "threads"})
    ->ArgsProduct({{0, 1}, {2}})->UseRealTime();

// A decode product's activations quantized: what the calling thread does
// alone before every Q8_0 / Q4_0 product. args: n (inputs), impl (0 the
// reference loops, 1 quantize_activations' int16 values for the Highway
// kernels, 2 the VNNI panels' bytes, scales and corrections in one pass)
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  std::vector<int16_t> q(static_cast<size_t>(n));
  std::vector<int8_t> x8(static_cast<size_t>(n));
  std::vector<int32_t> corr(size_t(n / 32));
  std::vector<float> scales(size_t(n / 32));
  const auto impl = Impl(state.range(1));
  if (impl == kPanels && !ops::vnni::enabled()) return state.SkipWithError("no AVX512-VNNI panels on this CPU");
  for (auto _ : state) {
    if (impl == kPanels)
      ops::vnni::quantize_for_panels(x.data(), 1, size_t(n), DType::Q4_0, x8.data(), corr.data(), scales.data());
    else if (impl == kSimd)
      ops::quantize_activations(x.data(), 1, n, q.data(), scales.data());
    else
      ops::reference::quantize_activations(x.data(), 1, n, q.data(), scales.data());
    benchmark::DoNotOptimize(scales.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * n * int64_t(sizeof(float)));
  state.SetLabel(impl == kPanels ? "vnni panels" : impl == kSimd ? ops::simd_target() : "reference");
}
BENCHMARK(BM_QuantizeActivations)->Name("QuantizeActivations")->ArgNames({"n", "impl"})
    ->ArgsProduct({{2048, 8192}, {0, 1, 2}});

}  // namespace
