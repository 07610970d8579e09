// aviary bench: prompt-processing and generation speed in the manner of
// llama.cpp's llama-bench (same test names and jsonl fields, so the same
// scripts read both), plus how close generation comes to the memory
// bandwidth: each generated token reads every weight once.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/eval.h"
#include "model/model.h"
#include "ops/membw.h"
#include "ops/simd.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::cli {

namespace {

struct BenchOpts {
  std::string model;
  int64_t n_prompt = 512, n_gen = 128, membw_mib = 1024;
  int reps = 5;
  bool json = false, membw = false, no_warmup = false;
  double membw_gbs = 0;
  uint64_t seed = 1234;
};

struct Stats {
  double mean = 0, stddev = 0, median = 0;
};

// Sample standard deviation (n - 1), as llama-bench reports it.
Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(sq / double(v.size() - 1));
  }
  std::sort(v.begin(), v.end());
  const size_t m = v.size();
  s.median = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
  return s;
}

std::string cpu_info() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "rwkv7 191M bf16": generation, parameter count and the type most weights have.
std::string model_type(const Model& model, int64_t n_params) {
  std::map<std::string, int64_t> by_dtype;
  for (const auto& t : model.checkpoint().tensors()) by_dtype[std::string(dtype_name(t.dtype))] += t.numel();
  const auto most = std::max_element(by_dtype.begin(), by_dtype.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  char size[32];
  if (n_params >= 1'000'000'000) std::snprintf(size, sizeof size, "%.1fB", double(n_params) / 1e9);
  else std::snprintf(size, sizeof size, "%.0fM", double(n_params) / 1e6);
  const std::string gen = model.config().sub_version.substr(0, 1);  // "7.0" -> "7"
  return "rwkv" + gen + " " + size + " " + (most == by_dtype.end() ? "?" : most->first);
}

struct TestResult {
  int64_t n_prompt = 0, n_gen = 0;
  std::vector<double> samples_ns;
  std::vector<double> samples_ts;
  // Weight bytes the timed repetitions did not read (Model::weight_bytes_skipped).
  int64_t weight_bytes_skipped = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One repetition: a fresh state, then the prompt in one call (pp) or the
// tokens one call each (tg). Returns nanoseconds.
double run_once(const Model& model, const std::vector<int32_t>& tokens, bool prompt) {
  State state = model.new_state();
  std::vector<float> logits;
  const auto start = std::chrono::steady_clock::now();
  if (prompt) {
    model.forward(tokens, state, logits);
  } else {
    for (int32_t t : tokens) model.forward({&t, 1}, state, logits);
  }
  return seconds_since(start) * 1e9;
}

// `between` (if set) runs before the first timed repetition and after each.
TestResult run_test(const Model& model, const BenchOpts& o, int64_t n, bool prompt,
                    const std::function<void()>& between = {}) {
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> id(1, int32_t(model.config().vocab_size - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = id(rng);
  TestResult r;
  (prompt ? r.n_prompt : r.n_gen) = n;
  if (!o.no_warmup) run_once(model, tokens, prompt);  // page in the weights, start the pool
  if (between) between();
  int64_t skipped = 0;
  for (int i = 0; i < o.reps; ++i) {
    const int64_t skipped_before = model.weight_bytes_skipped();
    const double ns = run_once(model, tokens, prompt);
    skipped += model.weight_bytes_skipped() - skipped_before;  // `between` may run other passes
    r.samples_ns.push_back(ns);
    r.samples_ts.push_back(double(n) / (std::max(ns, 1.0) * 1e-9));
    if (between) between();
  }
  r.weight_bytes_skipped = skipped;
  return r;
}

// Weight bytes one generated token read: every weight it multiplies, less
// what the sparse feed-forward skipped (on trained models most of the value
// matrix; rating the dense size against the bus would overstate it).
int64_t bytes_read_per_token(const TestResult& r, const WeightTraffic& w) {
  const int64_t tokens = r.n_gen * int64_t(r.samples_ns.size());
  return tokens > 0 ? w.bytes_per_token - r.weight_bytes_skipped / tokens : w.bytes_per_token;
}

// bytes_per_token: what one token of the test read (bytes_read_per_token for tg).
nlohmann::json test_json(const Model& model, const BenchOpts& o, const TestResult& r, const WeightTraffic& w,
                         int64_t bytes_per_token, double membw_gbs) {
  const Stats ns = stats_of(r.samples_ns), ts = stats_of(r.samples_ts);
  nlohmann::json j;
  // llama-bench's fields, in its order; those without meaning here keep its defaults.
#ifdef AVIARY_GIT_COMMIT
  j["build_commit"] = AVIARY_GIT_COMMIT;
#else
  j["build_commit"] = "unknown";
#endif
  j["build_number"] = 0;
  j["cpu_info"] = cpu_info();
  j["gpu_info"] = "";
  j["backends"] = "CPU";
  j["model_filename"] = o.model;
  j["model_type"] = model_type(model, w.n_params);
  j["model_size"] = w.model_bytes;
  j["model_n_params"] = w.n_params;
  j["n_batch"] = Model::kChunkTokens;
  j["n_ubatch"] = Model::kChunkTokens;
  j["n_threads"] = default_thread_count();
  j["type_k"] = "f32";  // RWKV has no KV cache; its recurrent state is fp32
  j["type_v"] = "f32";
  j["n_gpu_layers"] = 0;
  j["use_mmap"] = true;
  j["embeddings"] = false;
  j["n_prompt"] = r.n_prompt;
  j["n_gen"] = r.n_gen;
  j["n_depth"] = 0;
  j["test_time"] = utc_now();
  j["avg_ns"] = int64_t(std::llround(ns.mean));
  j["stddev_ns"] = int64_t(std::llround(ns.stddev));
  j["avg_ts"] = ts.mean;
  j["stddev_ts"] = ts.stddev;
  std::vector<int64_t> samples_ns;
  for (double x : r.samples_ns) samples_ns.push_back(int64_t(std::llround(x)));
  j["samples_ns"] = samples_ns;
  j["samples_ts"] = r.samples_ts;
  // Aviary's own.
  j["aviary_median_ts"] = ts.median;
  const bool gen = r.n_gen > 0;
  j["aviary_weight_bytes_per_token"] = bytes_per_token;
  j["aviary_dense_weight_bytes_per_token"] = w.bytes_per_token;  // every weight once
  j["aviary_gbs"] = gen ? nlohmann::json(double(bytes_per_token) * ts.median / 1e9) : nlohmann::json(nullptr);
  j["aviary_membw_gbs"] = membw_gbs > 0 ? nlohmann::json(membw_gbs) : nlohmann::json(nullptr);
  j["aviary_membw_fraction"] = gen && membw_gbs > 0
                                   ? nlohmann::json(double(bytes_per_token) * ts.median / 1e9 / membw_gbs)
                                   : nlohmann::json(nullptr);
  j["simd_target"] = ops::simd_target();
  return j;
}

void print_table_header() {
  std::printf("| %-22s | %10s | %9s | %7s | %6s | %18s | %8s | %7s |\n", "model", "size", "params", "threads",
              "test", "t/s (median)", "GB/s", "% membw");
  std::printf("| %s | %s: | %s: | %s: | %s: | %s: | %s: | %s: |\n", std::string(22, '-').c_str(),
              std::string(9, '-').c_str(), std::string(8, '-').c_str(), std::string(6, '-').c_str(),
              std::string(5, '-').c_str(), std::string(17, '-').c_str(), std::string(7, '-').c_str(),
              std::string(6, '-').c_str());
}

void print_table_row(const nlohmann::json& j) {
  const bool gen = j["n_gen"].get<int64_t>() > 0;
  const std::string test = gen ? "tg" + std::to_string(j["n_gen"].get<int64_t>())
                               : "pp" + std::to_string(j["n_prompt"].get<int64_t>());
  char ts[64], gbs[32] = "", frac[32] = "", params[32];
  std::snprintf(ts, sizeof ts, "%.2f ± %.2f", j["aviary_median_ts"].get<double>(), j["stddev_ts"].get<double>());
  if (!j["aviary_gbs"].is_null()) std::snprintf(gbs, sizeof gbs, "%.2f", j["aviary_gbs"].get<double>());
  if (!j["aviary_membw_fraction"].is_null())
    std::snprintf(frac, sizeof frac, "%.1f%%", 100 * j["aviary_membw_fraction"].get<double>());
  std::snprintf(params, sizeof params, "%.2f M", j["model_n_params"].get<double>() / 1e6);
  std::printf("| %-22s | %10s | %9s | %7d | %6s | %18s | %8s | %7s |\n", j["model_type"].get<std::string>().c_str(),
              human_bytes(j["model_size"].get<double>()).c_str(), params, j["n_threads"].get<int>(), test.c_str(), ts,
              gbs, frac);
}

// Each tg repetition against the bandwidth measured just before and just
// after it (the median of those passes): its fraction of the bound. The
// figures reported are the medians over the repetitions.
struct RepBandwidth {
  double gbs = 0, fraction = 0;
  std::vector<double> fractions;
};

RepBandwidth rate_repetitions(const TestResult& r, int64_t bytes_per_token,
                              const std::vector<std::vector<double>>& brackets) {
  RepBandwidth out;
  std::vector<double> gbs;
  for (size_t i = 0; i < r.samples_ts.size() && i + 1 < brackets.size(); ++i) {
    std::vector<double> around = brackets[i];
    around.insert(around.end(), brackets[i + 1].begin(), brackets[i + 1].end());
    const double membw = stats_of(around).median;
    gbs.push_back(membw);
    out.fractions.push_back(double(bytes_per_token) * r.samples_ts[i] / 1e9 / membw);
  }
  if (!gbs.empty()) {
    out.gbs = stats_of(gbs).median;
    out.fraction = stats_of(out.fractions).median;
  }
  return out;
}

ops::MembwResult measure_membw(const BenchOpts& o) {
  ops::MembwOptions m;
  m.buffer_bytes = o.membw_mib << 20;
  return ops::measure_memory_bandwidth(m);
}

int run_membw_only(const BenchOpts& o) {
  const ops::MembwResult m = measure_membw(o);
  if (o.json) {
    nlohmann::json j = {{"aviary_membw_gbs", m.gbs}, {"samples_gbs", m.pass_gbs}, {"buffer_bytes", m.buffer_bytes},
                        {"n_threads", m.threads}, {"cpu_info", cpu_info()}, {"test_time", utc_now()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("memory bandwidth: %.2f GB/s (median of %zu streaming-read passes over %s, %d threads)\n", m.gbs,
                m.pass_gbs.size(), human_bytes(double(m.buffer_bytes)).c_str(), m.threads);
  }
  return 0;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOpts>();
  app.add_option("-m,--model", o->model, "model (.pth, .safetensors or GGUF)");
  app.add_option("-p,--n-prompt", o->n_prompt, "prompt tokens processed in one call (0: skip the pp test)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("-n,--n-gen", o->n_gen, "tokens generated one at a time (0: skip the tg test)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("-r,--repetitions", o->reps, "timed repetitions of each test")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--json", o->json, "one JSON object per line per test, with llama-bench's jsonl field names");
  app.add_flag("--membw", o->membw, "measure the memory bandwidth (alone without -m; else around every tg repetition, to rate it)");
  app.add_option("--membw-gbs", o->membw_gbs, "the memory bandwidth in GB/s, instead of measuring it")
      ->check(CLI::PositiveNumber);
  app.add_option("--membw-mib", o->membw_mib, "buffer size of the bandwidth measurement, MiB")
      ->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  app.add_flag("--no-warmup", o->no_warmup, "skip the untimed run before each test");
  app.add_option("--seed", o->seed, "seed of the random token ids")->capture_default_str();
  add_threads_flag(app);
  return [=] {
    if (o->model.empty()) {
      if (o->membw) return run_membw_only(*o);
      throw Error("bench: give -m MODEL (or --membw alone to measure the memory bandwidth)");
    }
    const auto model = load_model(o->model);
    const WeightTraffic w = weight_traffic(*model);
    if (!o->json) print_table_header();
    std::vector<double> membw_passes;
    double tg_membw = 0;  // the median of the repetitions' bandwidths
    int64_t tg_bytes_per_token = w.bytes_per_token;
    for (const bool prompt : {true, false}) {
      const int64_t n = prompt ? o->n_prompt : o->n_gen;
      if (n == 0) continue;
      // The bandwidth that rates tg is measured around every repetition
      // (before the first, then after each): on a shared machine it drifts by
      // a third within a minute, so a figure from another moment would rate a
      // repetition against the wrong bus.
      const bool measure = !prompt && o->membw && o->membw_gbs <= 0;
      std::vector<std::vector<double>> brackets;  // passes before repetition 0, after 0, after 1, ...
      const TestResult r = run_test(*model, *o, n, prompt, measure ? std::function<void()>([&] {
        brackets.push_back(measure_membw(*o).pass_gbs);
      }) : std::function<void()>());
      const int64_t per_token = prompt ? w.bytes_per_token : bytes_read_per_token(r, w);
      if (!prompt) tg_bytes_per_token = per_token;
      const RepBandwidth bw = measure ? rate_repetitions(r, per_token, brackets) : RepBandwidth{};
      if (measure) {
        tg_membw = bw.gbs;
        for (const auto& b : brackets) membw_passes.insert(membw_passes.end(), b.begin(), b.end());
      }
      nlohmann::json j = test_json(*model, *o, r, w, per_token, prompt ? 0 : measure ? tg_membw : o->membw_gbs);
      if (measure) {
        j["aviary_membw_samples_gbs"] = membw_passes;
        j["aviary_membw_fraction"] = bw.fraction;
        j["aviary_membw_fraction_samples"] = bw.fractions;
      }
      if (o->json) std::printf("%s\n", j.dump().c_str());
      else print_table_row(j);
      std::fflush(stdout);
    }
    if (!o->json) {
      std::printf("\nweights read per generated token: %s", human_bytes(double(tg_bytes_per_token)).c_str());
      if (tg_bytes_per_token != w.bytes_per_token)
        std::printf(" (of %s: the sparse feed-forward skipped the rest)", human_bytes(double(w.bytes_per_token)).c_str());
      std::printf("; SIMD target: %s\n", ops::simd_target().c_str());
      if (!membw_passes.empty())
        std::printf("memory bandwidth: %.2f GB/s (%zu streaming-read passes around the tg repetitions; the median "
                    "repetition's, each rated against the passes just before and after it)\n",
                    tg_membw, membw_passes.size());
    }
    return 0;
  };
}

}  // namespace aviary::cli
