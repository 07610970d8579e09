// `aviary eval`, `aviary bench` and `aviary synth` end to end. Bench output
// is checked for its fields only: timing never lives in tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "common/fp32_activations.h"
#include "common/test_util.h"

namespace aviary {
namespace {

using test::run_cli;

const char* kWorldCase = "v7_world_L2_C64_V65536_bf16";

std::string vocab() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }
std::string world_model() { return test::case_model_path(kWorldCase); }
std::string tiny_model() { return test::case_model_path("v7_tiny_L2_C128_V1000_fp32"); }

// The case's text, whose first 23 tokens are the manifest's tokens after 0.
std::string write_case_text(const test::TempDir& tmp) {
  const auto m = test::read_json(test::refdata_case(kWorldCase) / "manifest.json");
  const auto path = (tmp / "text.txt").string();
  test::write_bytes(path, m["text"].get<std::string>());
  return path;
}

double official_ppl() {
  const auto tokens = test::case_tokens(kWorldCase);
  const auto logits = test::read_floats(test::refdata_case(kWorldCase) / "logits_rnn.bin");
  const size_t V = logits.size() / tokens.size();
  double nll = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const float* row = logits.data() + i * V;
    double m = row[0], s = 0;
    for (size_t j = 0; j < V; ++j) m = std::max(m, double(row[j]));
    for (size_t j = 0; j < V; ++j) s += std::exp(double(row[j]) - m);
    nll += m + std::log(s) - double(row[size_t(tokens[i + 1])]);
  }
  return std::exp(nll / double(tokens.size() - 1));
}

TEST(EvalCli, PerplexityMatchesOfficialLogits) {
  const test::Fp32Activations fp32;  // the official fp32 logits' perplexity, to 1e-4
  test::TempDir tmp;
  const std::string text = write_case_text(tmp);
  const auto r = run_cli({"eval", "-m", world_model(), "--vocab", vocab(), "--ppl", text, "--max-tokens", "23",
                          "--json", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ppl"]["tokens"], 23);
  EXPECT_NEAR(j["ppl"]["ppl"].get<double>(), official_ppl(), 1e-4 * official_ppl());
  const auto human = run_cli({"eval", "-m", world_model(), "--vocab", vocab(), "--ppl", text});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("perplexity:"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("state carried across the whole text"), std::string::npos) << human.out;
}

TEST(EvalCli, LambadaAndCompareToItself) {
  test::TempDir tmp;
  const std::string text = write_case_text(tmp);
  const auto lambada = (test::shared_dir() / "data" / "lambada_test.jsonl").string();
  const auto r = run_cli({"eval", "-m", world_model(), "--vocab", vocab(), "--lambada", lambada, "--limit", "20",
                          "--ppl", text, "--compare-to", world_model(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["lambada"]["count"], 20);
  EXPECT_GE(j["lambada"]["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["lambada"]["accuracy"].get<double>(), 1.0);
  EXPECT_GT(j["lambada"]["ppl"].get<double>(), 1.0);
  EXPECT_EQ(j["compare"]["kl_max"].get<double>(), 0.0);
  EXPECT_EQ(j["compare"]["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(j["compare"]["positions"], j["ppl"]["tokens"]);
}

TEST(EvalCli, ClearErrors) {
  auto r = run_cli({"eval", "-m", world_model(), "--vocab", vocab()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ppl"), std::string::npos) << r.err;
  r = run_cli({"eval", "-m", world_model(), "--vocab", vocab(), "--compare-to", world_model()});
  EXPECT_EQ(r.exit_code, 2) << r.err;  // --compare-to needs --ppl
  r = run_cli({"eval", "-m", world_model(), "--vocab", vocab(), "--ppl", "/nonexistent/text.txt"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/text.txt"), std::string::npos) << r.err;
}

TEST(BenchCli, JsonLinesHaveLlamaBenchAndAviaryFields) {
  const auto r = run_cli({"bench", "-m", tiny_model(), "-p", "8", "-n", "4", "-r", "2", "-t", "2", "--json",
                          "--membw-gbs", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const auto& j : lines) {
    for (const char* k : {"build_commit", "model_filename", "model_type", "model_size", "model_n_params", "n_batch",
                          "n_threads", "type_k", "n_prompt", "n_gen", "test_time", "avg_ns", "stddev_ns", "avg_ts",
                          "stddev_ts", "samples_ns", "samples_ts", "aviary_weight_bytes_per_token",
                          "aviary_dense_weight_bytes_per_token", "aviary_gbs", "aviary_membw_fraction", "simd_target"})
      EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["n_threads"], 2);
    EXPECT_EQ(j["samples_ns"].size(), 2u);
    EXPECT_EQ(j["samples_ts"].size(), 2u);
    EXPECT_GT(j["avg_ts"].get<double>(), 0.0);
    EXPECT_GT(j["aviary_weight_bytes_per_token"].get<int64_t>(), 0);
    EXPECT_LT(j["aviary_weight_bytes_per_token"].get<int64_t>(), j["model_size"].get<int64_t>());
    // What tg read: the dense figure less what the sparse feed-forward skipped.
    EXPECT_LE(j["aviary_weight_bytes_per_token"].get<int64_t>(),
              j["aviary_dense_weight_bytes_per_token"].get<int64_t>());
  }
  EXPECT_EQ(lines[0]["n_prompt"], 8);
  EXPECT_EQ(lines[0]["n_gen"], 0);
  EXPECT_TRUE(lines[0]["aviary_gbs"].is_null());
  EXPECT_EQ(lines[1]["n_prompt"], 0);
  EXPECT_EQ(lines[1]["n_gen"], 4);
  EXPECT_GT(lines[1]["aviary_gbs"].get<double>(), 0.0);
  EXPECT_NEAR(lines[1]["aviary_membw_fraction"].get<double>(), lines[1]["aviary_gbs"].get<double>() / 10, 1e-9);
}

TEST(BenchCli, TableAndMembw) {
  auto r = run_cli({"bench", "-m", tiny_model(), "-p", "8", "-n", "4", "-r", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" pp8 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" tg4 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rwkv7 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("t/s"), std::string::npos) << r.out;
  r = run_cli({"bench", "--membw", "--membw-mib", "8", "--json", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["aviary_membw_gbs"].get<double>(), 0.0);
  EXPECT_EQ(j["n_threads"], 2);
  r = run_cli({"bench"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("-m MODEL"), std::string::npos) << r.err;
}

// With a model, --membw measures around every tg repetition (five passes
// before the first and after each) and rates each repetition against the
// median of the passes just before and after it; the fraction and bandwidth
// reported are the medians over the repetitions. pp is not rated.
TEST(BenchCli, MembwMeasuredAroundEachTgRepetition) {
  const auto r = run_cli({"bench", "-m", tiny_model(), "-p", "8", "-n", "4", "-r", "2", "-t", "2", "--json",
                          "--membw", "--membw-mib", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<nlohmann::json> lines;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_TRUE(lines[0]["aviary_membw_fraction"].is_null());
  EXPECT_FALSE(lines[0].contains("aviary_membw_samples_gbs"));
  const auto& tg = lines[1];
  const auto passes = tg["aviary_membw_samples_gbs"].get<std::vector<double>>();
  const auto fractions = tg["aviary_membw_fraction_samples"].get<std::vector<double>>();
  const auto ts = tg["samples_ts"].get<std::vector<double>>();
  ASSERT_EQ(passes.size(), 15u);
  ASSERT_EQ(fractions.size(), 2u);
  ASSERT_EQ(ts.size(), 2u);
  const double bytes = tg["aviary_weight_bytes_per_token"].get<double>();
  std::vector<double> membw;
  for (size_t i = 0; i < 2; ++i) {
    std::vector<double> around(passes.begin() + long(5 * i), passes.begin() + long(5 * i + 10));
    std::sort(around.begin(), around.end());
    membw.push_back(0.5 * (around[4] + around[5]));
    EXPECT_NEAR(fractions[i], bytes * ts[i] / 1e9 / membw[i], 1e-9 * fractions[i]) << i;
  }
  EXPECT_DOUBLE_EQ(tg["aviary_membw_gbs"].get<double>(), 0.5 * (membw[0] + membw[1]));
  EXPECT_DOUBLE_EQ(tg["aviary_membw_fraction"].get<double>(), 0.5 * (fractions[0] + fractions[1]));
}

TEST(SynthCli, WritesALoadableModelAndBenchRunsOnIt) {
  test::TempDir tmp;
  const auto out = (tmp / "s.pth").string();
  auto r = run_cli({"synth", "--shape", "0.1B", "--layers", "1", "--out", out, "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"info", "-m", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_embd"], 768);
  EXPECT_EQ(j["n_layer"], 1);
  EXPECT_EQ(j["lora_ranks"]["g"], 128);
  r = run_cli({"bench", "-m", out, "-p", "4", "-n", "2", "-r", "1", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"synth", "--shape", "3B", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace aviary
