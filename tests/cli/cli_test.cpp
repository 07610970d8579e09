// The `aviary` executable end to end: the same reference checks as the
// library tests, through the command line, plus its error handling.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/fp32_activations.h"
#include "common/test_util.h"

namespace aviary {
namespace {

using test::from_hex;
using test::to_hex;

using test::run_cli;
namespace fs = std::filesystem;

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

std::string vocab() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

class ForwardCli : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir() const { return test::refdata_case(GetParam()); }
  nlohmann::json manifest() const { return test::read_json(dir() / "manifest.json"); }
  test::TempDir tmp_;
};

TEST_P(ForwardCli, BothModesMatchOfficialLogitsAndState) {
  const test::Fp32Activations fp32;  // fp32 tolerance
  const auto m = manifest();
  const auto tokens = m["tokens"].get<std::vector<int32_t>>();
  const float tol = m["suggested_tolerances"]["fp32_engine_logits_atol"].get<float>();
  for (const std::string mode : {"seq", "rnn"}) {
    const auto logits = tmp_ / ("logits_" + mode), state = tmp_ / ("state_" + mode);
    const auto r = run_cli({"forward", "-m", (dir() / "model.pth").string(), "--tokens", join_ids(tokens),
                            "--mode", mode, "--logits-out", logits.string(), "--state-out-f32", state.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_LE(test::max_abs_diff(test::read_floats(logits), test::read_floats(dir() / "logits_rnn.bin")), tol) << mode;
    EXPECT_LE(test::max_abs_diff(test::read_floats(state), test::read_floats(dir() / "state_rnn.bin")), tol) << mode;
  }
}

TEST_P(ForwardCli, ContinuesFromOfficialPrefixState) {
  const test::Fp32Activations fp32;  // fp32 tolerance
  const auto m = manifest();
  const auto tokens = m["tokens"].get<std::vector<int32_t>>();
  const size_t P = m["prefix_len_P"].get<size_t>();
  const float tol = m["suggested_tolerances"]["fp32_engine_logits_atol"].get<float>();
  const auto logits = tmp_ / "logits", state = tmp_ / "state";
  const auto r = run_cli({"forward", "-m", (dir() / "model.pth").string(), "--tokens",
                          join_ids({tokens.begin() + std::ptrdiff_t(P), tokens.end()}), "--logits-out",
                          logits.string(), "--state-in-f32", (dir() / "state_prefix.bin").string(),
                          "--state-out-f32", state.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LE(test::max_abs_diff(test::read_floats(logits), test::read_floats(dir() / "logits_cont_seq.bin")), tol);
  EXPECT_LE(test::max_abs_diff(test::read_floats(state), test::read_floats(dir() / "state_cont_rnn.bin")), tol);
}

TEST_P(ForwardCli, InfoReportsDimensions) {
  const auto m = manifest();
  const auto r = run_cli({"info", "-m", (dir() / "model.pth").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_layer"], m["config"]["n_layer"]);
  EXPECT_EQ(j["n_embd"], m["config"]["n_embd"]);
  EXPECT_EQ(j["vocab_size"], m["config"]["vocab_size"]);
  EXPECT_EQ(j["ffn_dim"], m["config"]["dim_ffn"]);
  EXPECT_EQ(j["n_params"], m["checkpoint"]["param_count"]);
  if (m.contains("lora_dims") && !m["lora_dims"].is_null()) {
    for (auto& [k, v] : m["lora_dims"].items()) EXPECT_EQ(j["lora_ranks"][k], v) << k;
  }
  EXPECT_EQ(std::stod(j["sub_version"].get<std::string>()), m["pip_version_detected"].get<double>());
  const std::string generation = m["version"];  // "v4" .. "v7"
  const auto text = run_cli({"info", "-m", (dir() / "model.pth").string()});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("RWKV-" + generation.substr(1)), std::string::npos) << text.out;
}

INSTANTIATE_TEST_SUITE_P(AllCases, ForwardCli, ::testing::ValuesIn(test::refdata_cases()),
                         [](const auto& info) { return info.param; });

TEST(TokenizeCli, EveryOfficialVectorThroughTheCommand) {
  const auto v = test::read_json(test::shared_dir() / "refdata" / "tokenizer" / "world_tokenizer_vectors.json");
  test::TempDir tmp;
  size_t n = 0;
  auto check = [&](const std::string& bytes, const std::vector<int32_t>& ids) {
    const auto file = tmp / "text";
    test::write_bytes(file, bytes);
    const auto r = run_cli({"tokenize", "--vocab", vocab(), "--text-file", file.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, join_ids(ids) + "\n") << bytes;
    ++n;
  };
  for (const auto& c : v["encode_cases"]) check(from_hex(c["utf8_hex"]), c["ids"].get<std::vector<int32_t>>());
  for (const auto& c : v["invalid_utf8_encode_cases"])
    check(from_hex(c["bytes_hex"]), c["ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(n, 276u);
}

TEST(TokenizeCli, Gptneox20BVectorsThroughTheCommand) {
  // One case in eight of every category (the library test covers them all).
  const auto v = test::read_json(test::shared_dir() / "refdata" / "tokenizer" / "gptneox20b_tokenizer_vectors.json");
  const std::string neox = (test::shared_dir() / "vocab" / "20B_tokenizer.json").string();
  test::TempDir tmp;
  size_t n = 0;
  for (size_t i = 0; i < v["cases"].size(); i += 8, ++n) {
    const auto& c = v["cases"][i];
    test::write_bytes(tmp / "text", from_hex(c["utf8_hex"]));
    const auto r = run_cli({"tokenize", "--vocab", neox, "--text-file", (tmp / "text").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, join_ids(c["ids"].get<std::vector<int32_t>>()) + "\n") << c["text"];
  }
  EXPECT_GE(n, 30u);
}

TEST(TokenizeCli, ArgumentJsonAndDetokenize) {
  const auto r = run_cli({"tokenize", "--vocab", vocab(), "--json", "Hello world"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], nlohmann::json({33155, 40213}));
  EXPECT_EQ(j["tokens"], nlohmann::json({"Hello", " world"}));
  const auto d = run_cli({"detokenize", "--vocab", vocab(), "33155,40213"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, "Hello world");
  const auto raw = run_cli({"detokenize", "--vocab", vocab(), "--raw", "256"});
  EXPECT_EQ(raw.out, "\xff");
  const auto replaced = run_cli({"detokenize", "--vocab", vocab(), "256"});
  EXPECT_EQ(replaced.out, "\xef\xbf\xbd");
}

fs::path world_model() { return test::refdata_case("v7_world_L2_C64_V65536_bf16") / "model.pth"; }

TEST(GenerateCli, StreamsTextAndRepeatsWithTheSameSeed) {
  const std::vector<std::string> args = {"generate", "-m", world_model().string(), "--vocab", vocab(),
                                         "-p", "The capital of France is", "-n", "24", "--seed", "42"};
  const auto a = run_cli(args), b = run_cli(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_GT(a.out.size(), 1u);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.err.find("tokens/s"), std::string::npos) << a.err;
  auto other = args;
  other.back() = "43";
  EXPECT_NE(run_cli(other).out, a.out);
}

TEST(GenerateCli, GreedyStopsAtTokenLimit) {
  const auto r = run_cli({"generate", "-m", world_model().string(), "--vocab", vocab(), "-p", "Hi",
                          "-n", "5", "--temperature", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generation: 5 tokens"), std::string::npos) << r.err;
}

// --- bad input: a clear message and a non-zero exit code -------------------

void expect_error(const test::CliResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 64) << "crashed? " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(CliErrors, MissingModelFile) {
  expect_error(run_cli({"info", "-m", "/nonexistent/model.pth"}), "/nonexistent/model.pth");
}

TEST(CliErrors, NotACheckpoint) {
  expect_error(run_cli({"info", "-m", vocab()}), vocab());
}

TEST(CliErrors, BadTokenList) {
  test::TempDir tmp;
  const auto model = (test::refdata_case("v7_tiny_L2_C128_V1000_fp32") / "model.pth").string();
  expect_error(run_cli({"forward", "-m", model, "--tokens", "1,x,3", "--logits-out", (tmp / "l").string()}), "'x'");
  expect_error(run_cli({"forward", "-m", model, "--tokens", "1,1000", "--logits-out", (tmp / "l").string()}),
               "token id 1000");
  expect_error(run_cli({"forward", "-m", model, "--tokens", "1", "--mode", "gpt", "--logits-out",
                        (tmp / "l").string()}), "--mode");
}

TEST(CliErrors, StateFileOfTheWrongSize) {
  test::TempDir tmp;
  const auto model = (test::refdata_case("v7_tiny_L2_C128_V1000_fp32") / "model.pth").string();
  const auto other_state = test::refdata_case("v7_world_L2_C64_V65536_bf16") / "state_prefix.bin";
  expect_error(run_cli({"forward", "-m", model, "--tokens", "1", "--logits-out", (tmp / "l").string(),
                        "--state-in-f32", other_state.string()}), "state has");
}

TEST(CliErrors, UnknownSubcommandAndMissingArguments) {
  EXPECT_NE(run_cli({"fly"}).exit_code, 0);
  EXPECT_NE(run_cli({"forward"}).exit_code, 0);
  EXPECT_NE(run_cli({}).exit_code, 0);
}

TEST(CliErrors, TokenizerThatDoesNotFitTheModel) {
  const std::string neox = (test::shared_dir() / "vocab" / "20B_tokenizer.json").string();
  expect_error(run_cli({"generate", "-m", world_model().string(), "--vocab", neox, "-p", "x"}),
               "it expects the RWKV World vocabulary");
  const auto tiny = (test::refdata_case("v4_tiny_L2_C128_V1000_fp32") / "model.pth").string();
  expect_error(run_cli({"generate", "-m", tiny, "-p", "x"}), "no vocabulary found next to");
}

TEST(CliErrors, BadSamplingFlags) {
  expect_error(run_cli({"generate", "-m", world_model().string(), "--vocab", vocab(), "-p", "x", "--top-p", "1.5"}),
               "top_p");
}

}  // namespace
}  // namespace aviary
