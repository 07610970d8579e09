// A llama-bench-style driver for rwkv.cpp (github.com/RWKV/rwkv.cpp), so that
// bench/compare.py can run it beside Aviary and llama.cpp. It uses only
// rwkv.cpp's public C API (rwkv.h) and prints one jsonl record per test with
// llama-bench's field names. Not part of the Aviary build: compile it against a
// checkout of rwkv.cpp built from its public sources, e.g.
//
//   g++ -O2 -std=c++17 bench/peers/rwkvcpp_bench.cpp -I$RWKVCPP -L$RWKVCPP/build \
//       -lrwkv -Wl,-rpath,$RWKVCPP/build -o /tmp/rwkvcpp-bench
//   /tmp/rwkvcpp-bench -m model.bin -p 512 -n 128 -t 2 -r 3
//
// Prompt processing uses rwkv_eval_sequence_in_chunks (chunk 64 by default,
// rwkv.cpp's fast path); generation calls rwkv_eval once per token, feeding
// the state back, with logits computed at every step as a generator needs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "rwkv.h"

namespace {

struct Options {
  std::string model;
  int prompt = 512, gen = 128, threads = 2, reps = 3, chunk = 64;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "rwkvcpp_bench: %s\nusage: rwkvcpp_bench -m MODEL [-p N] [-n N] [-t N] [-r N] [--chunk N]\n",
               msg);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "-m") o.model = v;
    else if (a == "-p") o.prompt = std::atoi(v);
    else if (a == "-n") o.gen = std::atoi(v);
    else if (a == "-t") o.threads = std::atoi(v);
    else if (a == "-r") o.reps = std::atoi(v);
    else if (a == "--chunk") o.chunk = std::atoi(v);
    else usage(("unknown flag " + a).c_str());
  }
  if (o.model.empty()) usage("-m MODEL is required");
  if (o.reps < 1 || o.threads < 1 || o.chunk < 1) usage("-r, -t and --chunk must be positive");
  return o;
}

double now_ns() {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count());
}

// Prints a llama-bench-compatible record for `tokens` tokens timed `samples_ns` times.
void print_record(const Options& o, int n_prompt, int n_gen, const std::vector<double>& samples_ns) {
  const int tokens = n_prompt + n_gen;
  std::vector<double> ts;
  for (double ns : samples_ns) ts.push_back(1e9 * tokens / ns);
  auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); };
  auto stddev = [&](const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / (v.size() - 1));
  };
  std::printf("{\"model_filename\": \"%s\", \"n_threads\": %d, \"n_prompt\": %d, \"n_gen\": %d, "
              "\"avg_ns\": %.0f, \"stddev_ns\": %.0f, \"avg_ts\": %.6f, \"stddev_ts\": %.6f, \"samples_ts\": [",
              o.model.c_str(), o.threads, n_prompt, n_gen, mean(samples_ns), stddev(samples_ns), mean(ts),
              stddev(ts));
  for (size_t i = 0; i < ts.size(); ++i) std::printf("%s%.6f", i ? ", " : "", ts[i]);
  std::printf("]}\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  rwkv_context* ctx = rwkv_init_from_file(o.model.c_str(), uint32_t(o.threads), 0);
  if (!ctx) {
    std::fprintf(stderr, "rwkvcpp_bench: rwkv.cpp could not load %s\n", o.model.c_str());
    return 1;
  }
  std::vector<float> state(rwkv_get_state_len(ctx)), logits(rwkv_get_logits_len(ctx));
  std::mt19937 rng(42);
  std::vector<uint32_t> prompt(size_t(std::max(o.prompt, 1)));
  for (auto& t : prompt) t = 1 + rng() % uint32_t(rwkv_get_n_vocab(ctx) - 1);

  if (o.prompt > 0) {
    // One untimed warm-up run builds and caches the sequence graph.
    rwkv_eval_sequence_in_chunks(ctx, prompt.data(), prompt.size(), size_t(o.chunk), nullptr, state.data(),
                                 logits.data());
    std::vector<double> samples;
    for (int r = 0; r < o.reps; ++r) {
      const double t0 = now_ns();
      if (!rwkv_eval_sequence_in_chunks(ctx, prompt.data(), prompt.size(), size_t(o.chunk), nullptr,
                                        state.data(), logits.data()))
        return 1;
      samples.push_back(now_ns() - t0);
    }
    print_record(o, o.prompt, 0, samples);
  }
  if (o.gen > 0) {
    std::vector<double> samples;
    for (int r = 0; r < o.reps + 1; ++r) {  // the first repetition warms up
      rwkv_init_state(ctx, state.data());
      uint32_t token = prompt[0];
      const double t0 = now_ns();
      for (int i = 0; i < o.gen; ++i) {
        if (!rwkv_eval(ctx, token, state.data(), state.data(), logits.data())) return 1;
        token = uint32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
      if (r > 0) samples.push_back(now_ns() - t0);
    }
    print_record(o, 0, o.gen, samples);
  }
  rwkv_free(ctx);
  return 0;
}
