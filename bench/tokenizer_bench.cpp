// World tokenizer: vocabulary load time and encode throughput.
// Run: build/release/bench/tokenizer_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "text/world_tokenizer.h"

namespace {

std::string vocab_path() {
  const char* env = std::getenv("AVIARY_SHARED");
  return std::string(env && *env ? env : AVIARY_SHARED_DEFAULT) + "/vocab/rwkv_vocab_v20230424.txt";
}

void BM_LoadWorldVocabulary(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(aviary::WorldTokenizer::load(vocab_path()));
}
BENCHMARK(BM_LoadWorldVocabulary)->Unit(benchmark::kMillisecond);

void BM_EncodeMixedText(benchmark::State& state) {
  const auto tok = aviary::WorldTokenizer::load(vocab_path());
  const std::string unit =
      "The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸跳过了懒狗。 "
      "def f(x):\n    return x * 2  # 🦜\n\n";
  std::string text;
  while (text.size() < (1u << 20)) text += unit;
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode(text));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}
BENCHMARK(BM_EncodeMixedText)->Unit(benchmark::kMillisecond);

}  // namespace
