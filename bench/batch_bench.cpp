// Batched decode: Model::forward_batch with B sequences of one token each, on
// the v7_world_L2_C64_V65536_bf16 refdata model (its 65536-row head dominates,
// which is what batching amortises). tokens_per_second counts B per call.
// Run: build/release/bench/batch_bench [--benchmark_filter=Decode/32]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace {

std::string model_path() {
  const char* env = std::getenv("AVIARY_SHARED");
  return std::string(env && *env ? env : AVIARY_SHARED_DEFAULT) + "/refdata/v7_world_L2_C64_V65536_bf16/model.pth";
}

const aviary::Model& model() {
  static const std::unique_ptr<aviary::Model> m = aviary::load_model(model_path());
  return *m;
}

// arg: batch size B
void BM_ForwardBatchDecode(benchmark::State& state) {
  const aviary::Model& m = model();
  const size_t B = size_t(state.range(0)), V = size_t(m.config().vocab_size);
  std::vector<aviary::State> states(B, m.new_state());
  std::vector<int32_t> tokens(B);
  std::vector<float> logits(B * V);
  std::vector<aviary::BatchItem> items(B);
  for (size_t i = 0; i < B; ++i) {
    tokens[i] = int32_t((i * 7919 + 11) % V);  // distinct sequences, different tokens
    items[i] = {{&tokens[i], 1}, &states[i], logits.data() + i * V};
  }
  for (auto _ : state) {
    m.forward_batch(items);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(double(B) * double(state.iterations()), benchmark::Counter::kIsRate);
}
// Real time: the matrix products run on the thread pool, not only this thread.
BENCHMARK(BM_ForwardBatchDecode)->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
