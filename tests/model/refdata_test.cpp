// Every generation (RWKV-4, 5.2, 6, 7) against the official implementation's
// vectors in shared/refdata: every position's logits and the final states, in
// both modes and from a saved prefix state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "common/test_util.h"
#include "model/model.h"
#include "ops/bf16_dot.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::max_abs_diff;

struct RefCase {
  std::string name;
  nlohmann::json manifest;
  std::vector<int32_t> tokens;
  size_t P = 0, V = 0;
  std::filesystem::path dir;
  std::vector<float> file(const std::string& f) const { return test::read_floats(dir / f); }
};

RefCase load_case(const std::string& name) {
  RefCase c;
  c.name = name;
  c.dir = test::refdata_case(name);
  c.manifest = test::read_json(c.dir / "manifest.json");
  c.tokens = c.manifest["tokens"].get<std::vector<int32_t>>();
  c.P = c.manifest["prefix_len_P"].get<size_t>();
  c.V = c.manifest["config"]["vocab_size"].get<size_t>();
  return c;
}

// A bf16/fp16 case runs twice: with fp32 activations (what an fp32 engine
// computes from the same weights, held to the fp32 tolerance) and, as
// "<case>_bf16dot", with the AVX512-BF16 products (ops/bf16_dot.h), which
// round activations to bf16: held to the README's bf16-engine tolerance.
constexpr std::string_view kBf16DotSuffix = "_bf16dot";

bool bf16_dot_mode(const std::string& param) { return param.ends_with(kBf16DotSuffix); }

std::vector<std::string> refdata_params() {
  std::vector<std::string> params;
  for (const std::string& name : test::refdata_cases()) {
    params.push_back(name);
    if (!name.ends_with("_fp32")) params.push_back(name + std::string(kBf16DotSuffix));
  }
  return params;
}

float logits_tolerance(const RefCase& c, bool bf16_dot) {
  const auto& t = c.manifest["suggested_tolerances"];
  return t[bf16_dot ? "bf16_engine_logits_atol" : "fp32_engine_logits_atol"].get<float>();
}
// The README gives no bf16-engine state tolerance: the states are held to the
// logits' (measured: at most 0.06 on every case, logits at most 0.08, against 0.25-1.1).
float state_tolerance(const RefCase& c, bool bf16_dot) {
  return bf16_dot ? logits_tolerance(c, true) : c.manifest["suggested_tolerances"]["fp32_engine_state_atol"].get<float>();
}

// Every row's argmax must agree with the reference; with bf16 activations at
// least 94% of them (the README's figure for the official bf16 engine).
void expect_same_argmax(const std::vector<float>& got, const std::vector<float>& want, size_t V, bool bf16_dot) {
  ASSERT_EQ(got.size(), want.size());
  const size_t rows = got.size() / V;
  size_t same = 0;
  for (size_t t = 0; t < rows; ++t) {
    const bool eq = test::argmax(&got[t * V], V) == test::argmax(&want[t * V], V);
    same += eq;
    if (!bf16_dot) {
      EXPECT_TRUE(eq) << "position " << t;
    }
  }
  if (bf16_dot) {
    EXPECT_GE(double(same), 0.94 * double(rows)) << same << " of " << rows << " argmax agree";
  }
}

void report(const std::string& what, float diff) {
  std::printf("  [%s] max |diff| = %.3g\n", what.c_str(), diff);
  ::testing::Test::RecordProperty(what, std::to_string(diff));
}

class Refdata : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    bf16_dot_ = bf16_dot_mode(GetParam());
    was_enabled_ = ops::bf16dot::enabled();
    ops::bf16dot::set_enabled(bf16_dot_);
    if (bf16_dot_ && !ops::bf16dot::enabled()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
    c_ = load_case(bf16_dot_ ? GetParam().substr(0, GetParam().size() - kBf16DotSuffix.size()) : GetParam());
    model_ = load_model((c_.dir / "model.pth").string());
  }
  void TearDown() override { ops::bf16dot::set_enabled(was_enabled_); }
  float logits_tolerance(const RefCase& c) const { return aviary::logits_tolerance(c, bf16_dot_); }
  float state_tolerance(const RefCase& c) const { return aviary::state_tolerance(c, bf16_dot_); }
  void expect_same_argmax(const std::vector<float>& got, const std::vector<float>& want, size_t V) const {
    aviary::expect_same_argmax(got, want, V, bf16_dot_);
  }
  std::vector<float> run_rnn(std::span<const int32_t> tokens, State& s) const {
    std::vector<float> all, step;
    for (int32_t t : tokens) {
      model_->forward({&t, 1}, s, step);
      all.insert(all.end(), step.begin(), step.end());
    }
    return all;
  }
  bool bf16_dot_ = false, was_enabled_ = false;
  RefCase c_;
  std::unique_ptr<Model> model_;
};

TEST_P(Refdata, DetectsConfig) {
  const auto& cfg = c_.manifest["config"];
  const ModelConfig& m = model_->config();
  const std::string version = c_.manifest["version"];
  const Arch want = version == "v4" ? Arch::RWKV4 : version == "v5" ? Arch::RWKV5 : version == "v6" ? Arch::RWKV6 : Arch::RWKV7;
  EXPECT_EQ(m.arch, want);
  EXPECT_EQ(std::stod(m.sub_version), c_.manifest["pip_version_detected"].get<double>());
  EXPECT_EQ(m.n_layer, cfg["n_layer"].get<int64_t>());
  EXPECT_EQ(m.n_embd, cfg["n_embd"].get<int64_t>());
  if (m.arch != Arch::RWKV4) {  // RWKV-4 has no heads
    EXPECT_EQ(m.n_head, cfg["n_head"].get<int64_t>());
    EXPECT_EQ(m.head_size, cfg["head_size"].get<int64_t>());
  }
  EXPECT_EQ(m.vocab_size, cfg["vocab_size"].get<int64_t>());
  EXPECT_EQ(m.ffn_dim, cfg["dim_ffn"].get<int64_t>());
  const auto& lora = c_.manifest["lora_dims"];
  if (m.arch == Arch::RWKV7) {
    EXPECT_EQ(m.lora_w, lora["w"].get<int64_t>());
    EXPECT_EQ(m.lora_a, lora["a"].get<int64_t>());
    EXPECT_EQ(m.lora_v, lora["v"].get<int64_t>());
    EXPECT_EQ(m.lora_g, lora["g"].get<int64_t>());
  } else if (m.arch == Arch::RWKV6) {
    EXPECT_EQ(m.lora_mix, lora["time_maa"].get<int64_t>());
    EXPECT_EQ(m.lora_decay, lora["time_decay"].get<int64_t>());
  }
  EXPECT_EQ(model_->new_state().raw().size(), c_.manifest["state_layout"]["n_floats"].get<size_t>());
}

TEST_P(Refdata, StateLayoutMatchesOfficial) {
  const State s = model_->new_state();
  const auto& want = c_.manifest["state_layout"]["tensors"];
  ASSERT_EQ(s.num_tensors(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(s.layout()[i].name, want[i]["name"].get<std::string>());
    EXPECT_EQ(s.layout()[i].shape, want[i]["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(s.layout()[i].offset, want[i]["offset_floats"].get<size_t>());
  }
}

TEST_P(Refdata, RnnModeMatchesOfficial) {
  State s = model_->new_state();
  const auto logits = run_rnn(c_.tokens, s);
  const auto want = c_.file("logits_rnn.bin");
  const float d = max_abs_diff(logits, want);
  report(c_.name + " rnn logits", d);
  EXPECT_LE(d, logits_tolerance(c_));
  expect_same_argmax(logits, want, c_.V);
  const float ds = max_abs_diff(std::vector<float>(s.raw().begin(), s.raw().end()), c_.file("state_rnn.bin"));
  report(c_.name + " rnn state", ds);
  EXPECT_LE(ds, state_tolerance(c_));
}

TEST_P(Refdata, SequenceModeMatchesOfficial) {
  State s = model_->new_state();
  std::vector<float> logits;
  model_->forward(c_.tokens, s, logits, /*all_positions=*/true);
  const auto want = c_.file("logits_seq_full.bin");
  const float d = max_abs_diff(logits, want);
  report(c_.name + " seq logits", d);
  EXPECT_LE(d, logits_tolerance(c_));
  expect_same_argmax(logits, want, c_.V);
  const float ds = max_abs_diff(std::vector<float>(s.raw().begin(), s.raw().end()), c_.file("state_seq.bin"));
  report(c_.name + " seq state", ds);
  EXPECT_LE(ds, state_tolerance(c_));

  State s2 = model_->new_state();
  std::vector<float> last;
  model_->forward(c_.tokens, s2, last);  // only the last position goes through the head
  ASSERT_EQ(last.size(), c_.V);
  EXPECT_LE(max_abs_diff(last, c_.file("logits_seq_last.bin")), logits_tolerance(c_));
}

TEST_P(Refdata, SequenceEqualsTokenByToken) {
  State seq = model_->new_state(), rnn = model_->new_state();
  std::vector<float> a;
  model_->forward(c_.tokens, seq, a, true);
  const auto b = run_rnn(c_.tokens, rnn);
  EXPECT_LE(max_abs_diff(a, b), 1e-5f);
  EXPECT_LE(max_abs_diff(std::vector<float>(seq.raw().begin(), seq.raw().end()),
                         std::vector<float>(rnn.raw().begin(), rnn.raw().end())),
            1e-5f);
}

// The last layer's channel mix runs only on the rows the head reads: the
// last position's logits and the state equal those of a pass that computes
// every position, bit for bit, also over several prefill chunks (the chunks
// before the last need no last-layer outputs at all).
TEST_P(Refdata, LastPositionOnlyEqualsEveryPositionBitwise) {
  std::vector<int32_t> tokens;
  while (tokens.size() < 2 * size_t(Model::kChunkTokens) + 7) tokens.insert(tokens.end(), c_.tokens.begin(), c_.tokens.end());
  for (const size_t n : {c_.tokens.size(), tokens.size()}) {
    const std::span<const int32_t> in(tokens.data(), n);
    State every = model_->new_state(), last_only = model_->new_state();
    std::vector<float> all, last;
    model_->forward(in, every, all, true);
    model_->forward(in, last_only, last);
    ASSERT_EQ(last.size(), c_.V);
    EXPECT_TRUE(std::equal(last.begin(), last.end(), all.end() - std::ptrdiff_t(c_.V))) << n << " tokens";
    EXPECT_TRUE(std::equal(every.raw().begin(), every.raw().end(), last_only.raw().begin())) << n << " tokens";
  }
}

TEST_P(Refdata, ContinuesFromSavedPrefixState) {
  const std::span<const int32_t> rest(c_.tokens.data() + c_.P, c_.tokens.size() - c_.P);
  State s = model_->new_state();
  s.load_raw(c_.file("state_prefix.bin"), "state_prefix.bin");
  std::vector<float> seq;
  model_->forward(rest, s, seq, true);
  const float d = max_abs_diff(seq, c_.file("logits_cont_seq.bin"));
  report(c_.name + " continuation seq logits", d);
  EXPECT_LE(d, logits_tolerance(c_));
  expect_same_argmax(seq, c_.file("logits_cont_seq.bin"), c_.V);

  State r = model_->new_state();
  r.load_raw(c_.file("state_prefix.bin"), "state_prefix.bin");
  const auto rnn = run_rnn(rest, r);
  EXPECT_LE(max_abs_diff(rnn, c_.file("logits_cont_rnn.bin")), logits_tolerance(c_));
  const float ds = max_abs_diff(std::vector<float>(r.raw().begin(), r.raw().end()), c_.file("state_cont_rnn.bin"));
  report(c_.name + " continuation state", ds);
  EXPECT_LE(ds, state_tolerance(c_));
}

TEST_P(Refdata, OwnPrefixStateMatchesOfficial) {
  State s = model_->new_state();
  std::vector<float> logits;
  model_->forward(std::span<const int32_t>(c_.tokens.data(), c_.P), s, logits);
  const float ds =
      max_abs_diff(std::vector<float>(s.raw().begin(), s.raw().end()), c_.file("state_prefix.bin"));
  EXPECT_LE(ds, state_tolerance(c_));
}

TEST_P(Refdata, IrregularChunksMatchWholeSequence) {
  // The official harness's chunk pattern: 5, 1, 11, 2, then the rest.
  State s = model_->new_state();
  std::vector<float> all, part;
  size_t pos = 0;
  for (size_t n : {size_t(5), size_t(1), size_t(11), size_t(2), c_.tokens.size() - 19}) {
    model_->forward(std::span<const int32_t>(c_.tokens.data() + pos, n), s, part, true);
    all.insert(all.end(), part.begin(), part.end());
    pos += n;
  }
  EXPECT_LE(max_abs_diff(all, c_.file("logits_seq_full.bin")), logits_tolerance(c_));
  EXPECT_LE(max_abs_diff(std::vector<float>(s.raw().begin(), s.raw().end()), c_.file("state_seq.bin")),
            state_tolerance(c_));
}

INSTANTIATE_TEST_SUITE_P(AllCases, Refdata, ::testing::ValuesIn(refdata_params()),
                         [](const auto& info) { return info.param; });

TEST(RefdataCoverage, EveryGenerationIsPresent) {
  const auto names = test::refdata_cases();
  for (const char* prefix : {"v4_", "v5_", "v6_", "v7_"})
    EXPECT_TRUE(std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; }))
        << prefix;
  EXPECT_GE(names.size(), 10u);
}

TEST(Rwkv7, RejectsTokensOutsideTheVocabulary) {
  const auto model = load_model((test::refdata_case("v7_tiny_L2_C128_V1000_fp32") / "model.pth").string());
  State s = model->new_state();
  std::vector<float> logits;
  const std::vector<int32_t> bad = {1, 2, 1000};
  try {
    model->forward(bad, s, logits);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 1000 at position 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aviary
