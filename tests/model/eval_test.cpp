// Perplexity, LAMBADA and model comparison against numbers computed here
// from the official logits of the refdata cases.
#include <gtest/gtest.h>

#include <cmath>

#include "common/fp32_activations.h"
#include "common/test_util.h"
#include "io/checkpoint.h"
#include "model/eval.h"
#include "model/gguf_rwkv7.h"
#include "model/model.h"
#include "ops/float_panels.h"
#include "ops/linear.h"
#include "util/dtype.h"
#include "util/error.h"

namespace aviary {
namespace {

const char* kWorldCase = "v7_world_L2_C64_V65536_bf16";

std::string vocab_path() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

// -log softmax(row)[target] from the stored official logits, in double.
double official_nll(const std::vector<float>& logits, size_t V, size_t pos, int32_t target) {
  const float* row = logits.data() + pos * V;
  double m = row[0];
  for (size_t i = 0; i < V; ++i) m = std::max(m, double(row[i]));
  double s = 0;
  for (size_t i = 0; i < V; ++i) s += std::exp(double(row[i]) - m);
  return m + std::log(s) - double(row[size_t(target)]);
}

// The manifest's tokens are [0] + text tokens: exactly the official ppl
// convention, so the official logits at positions 0..T-2 score tokens 1..T-1.
double official_ppl(const std::string& name) {
  const auto tokens = test::case_tokens(name);
  const auto logits = test::read_floats(test::refdata_case(name) / "logits_rnn.bin");
  const size_t V = logits.size() / tokens.size();
  double nll = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) nll += official_nll(logits, V, i, tokens[i + 1]);
  return std::exp(nll / double(tokens.size() - 1));
}

TEST(Perplexity, MatchesOfficialLogits) {
  const test::Fp32Activations fp32;  // the official fp32 logits' perplexity, to 1e-4
  for (const std::string name : {kWorldCase, "v7_tiny_L2_C128_V1000_fp32", "v6_tiny_L2_C128_V1000_fp32",
                                 "v4_tiny_L2_C128_V1000_fp32"}) {
    const auto model = load_model(test::case_model_path(name));
    const auto tokens = test::case_tokens(name);
    ASSERT_EQ(tokens.front(), 0);
    const std::vector<int32_t> text(tokens.begin() + 1, tokens.end());
    const double expected = official_ppl(name);
    for (int64_t batch : {int64_t(256), int64_t(5)}) {  // batching must not change the result
      const PerplexityResult r = perplexity(*model, text, {0, batch});
      EXPECT_EQ(r.tokens, int64_t(text.size()));
      EXPECT_NEAR(r.ppl(), expected, 1e-4 * expected) << name << " batch " << batch;
    }
  }
}

TEST(Perplexity, WindowsStartFromAFreshState) {
  const auto model = load_model(test::case_model_path(kWorldCase));
  const auto tokens = test::case_tokens(kWorldCase);
  const std::vector<int32_t> text(tokens.begin() + 1, tokens.end());
  // Two windows = the two halves scored separately.
  const size_t half = (text.size() + 1) / 2;
  const PerplexityResult whole = perplexity(*model, text, {int64_t(half)});
  const PerplexityResult a = perplexity(*model, std::span(text).first(half));
  const PerplexityResult b = perplexity(*model, std::span(text).subspan(half));
  EXPECT_EQ(whole.tokens, a.tokens + b.tokens);
  EXPECT_NEAR(whole.nll_sum, a.nll_sum + b.nll_sum, 1e-6 * whole.nll_sum);
}

TEST(Perplexity, RejectsBadInput) {
  const auto model = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  EXPECT_NE(test::error_of([&] { perplexity(*model, std::vector<int32_t>{}); }).find("no tokens"), std::string::npos);
  const std::string e = test::error_of([&] { perplexity(*model, std::vector<int32_t>{5, 1000}); });
  EXPECT_NE(e.find("1000"), std::string::npos) << e;
  EXPECT_NE(e.find("vocabulary"), std::string::npos) << e;
}

TEST(TokenNll, IsMinusLogSoftmax) {
  const std::vector<float> logits{1.f, 2.f, 3.f};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(token_nll(logits, 2), -std::log(std::exp(3.0) / z), 1e-12);
  EXPECT_NEAR(token_nll(logits, 0), -std::log(std::exp(1.0) / z), 1e-12);
}

TEST(KlDivergence, ZeroForSameAndPositiveOtherwise) {
  const std::vector<float> p{0.f, 1.f, 2.f}, q{2.f, 1.f, 0.f};
  EXPECT_EQ(kl_divergence(p, p), 0.0);
  EXPECT_GT(kl_divergence(p, q), 0.1);
  // Shifting every logit leaves the distribution unchanged.
  const std::vector<float> shifted{10.f, 11.f, 12.f};
  EXPECT_NEAR(kl_divergence(p, shifted), 0.0, 1e-12);
}

TEST(Compare, ModelWithItselfIsIdentical) {
  const test::Fp32Activations fp32;  // the official fp32 logits' perplexity, to 1e-4
  const auto model = load_model(test::case_model_path(kWorldCase));
  const auto tokens = test::case_tokens(kWorldCase);
  const std::vector<int32_t> text(tokens.begin() + 1, tokens.end());
  const CompareResult r = compare_models(*model, *model, text, 7);
  EXPECT_EQ(r.positions, int64_t(text.size()));
  EXPECT_EQ(r.kl_max, 0.0);
  EXPECT_EQ(r.top1_agreement(), 1.0);
  EXPECT_NEAR(r.model_ppl.ppl(), official_ppl(kWorldCase), 1e-4 * official_ppl(kWorldCase));
}

TEST(Compare, Bf16AgainstFp32IsCloseButNotEqual) {
  const auto bf16 = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_bf16"));
  const auto fp32 = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  const auto tokens = test::case_tokens("v7_tiny_L2_C128_V1000_fp32");
  const std::vector<int32_t> text(tokens.begin() + 1, tokens.end());
  const CompareResult r = compare_models(*bf16, *fp32, text);
  EXPECT_GT(r.kl_mean(), 0.0);
  EXPECT_LT(r.kl_mean(), 0.05);  // rounding weights to bf16 moves logits by ~0.2 of a std of 3
  EXPECT_GT(r.top1_agreement(), 0.8);
}

TEST(Compare, RejectsDifferentVocabularies) {
  const auto a = load_model(test::case_model_path(kWorldCase));
  const auto b = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  EXPECT_NE(test::error_of([&] { compare_models(*a, *b, std::vector<int32_t>{1, 2}); }).find("different vocabularies"),
            std::string::npos);
}

TEST(Lambada, ReadsAndSplitsAtTheLastSpace) {
  test::TempDir tmp;
  test::write_bytes(tmp / "l.jsonl", "{\"text\": \"the cat sat on the mat\"}\n\n{\"text\": \"a b\"}\n");
  const auto ex = read_lambada((tmp / "l.jsonl").string());
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].context, "the cat sat on the");
  EXPECT_EQ(ex[0].target, " mat");
  EXPECT_EQ(ex[1].context, "a");
  EXPECT_EQ(read_lambada((tmp / "l.jsonl").string(), 1).size(), 1u);
}

TEST(Lambada, BadFilesNameTheLine) {
  test::TempDir tmp;
  test::write_bytes(tmp / "a.jsonl", "{\"text\": \"ok text\"}\n{not json\n");
  EXPECT_NE(test::error_of([&] { read_lambada((tmp / "a.jsonl").string()); }).find("a.jsonl:2"), std::string::npos);
  test::write_bytes(tmp / "b.jsonl", "{\"text\": \"oneword\"}\n");
  EXPECT_NE(test::error_of([&] { read_lambada((tmp / "b.jsonl").string()); }).find("last word"), std::string::npos);
  test::write_bytes(tmp / "c.jsonl", "{\"txt\": \"a b\"}\n");
  EXPECT_NE(test::error_of([&] { read_lambada((tmp / "c.jsonl").string()); }).find("\"text\""), std::string::npos);
  EXPECT_NE(test::error_of([&] { read_lambada((tmp / "missing.jsonl").string()); }).find("cannot open"),
            std::string::npos);
}

TEST(Lambada, FirstExamplesGiveSaneNumbers) {
  const auto model = load_model(test::case_model_path(kWorldCase));
  const auto tokenizer = load_tokenizer(vocab_path());
  const auto examples = read_lambada((test::shared_dir() / "data" / "lambada_test.jsonl").string(), 20);
  ASSERT_EQ(examples.size(), 20u);
  const LambadaResult r = evaluate_lambada(*model, *tokenizer, examples);
  EXPECT_EQ(r.count, 20);
  EXPECT_GE(r.accuracy(), 0.0);
  EXPECT_LE(r.accuracy(), 1.0);
  EXPECT_GE(r.target_tokens, 20);
  EXPECT_TRUE(std::isfinite(r.ppl()));
  EXPECT_GT(r.ppl(), 1.0);
}

TEST(Lambada, ScoresTargetTokensLikePerplexityOfTheWholeText) {
  // One example = the NLL of the target tokens given [0] + context: compare
  // with per-token NLLs from one plain forward pass.
  const auto model = load_model(test::case_model_path(kWorldCase));
  const auto tokenizer = load_tokenizer(vocab_path());
  const LambadaExample ex{"The quick brown fox jumps over the lazy", " dog"};
  const LambadaResult r = evaluate_lambada(*model, *tokenizer, std::span(&ex, 1));
  std::vector<int32_t> all = tokenizer->encode(ex.context);
  const std::vector<int32_t> dst = tokenizer->encode(ex.target);
  all.insert(all.begin(), 0);
  const size_t src_len = all.size();
  all.insert(all.end(), dst.begin(), dst.end());
  State state = model->new_state();
  std::vector<float> logits;
  model->forward(all, state, logits, true);
  const size_t V = size_t(model->config().vocab_size);
  double nll = 0;
  for (size_t i = 0; i < dst.size(); ++i)
    nll += token_nll(std::span<const float>(logits).subspan((src_len - 1 + i) * V, V), dst[i]);
  EXPECT_NEAR(r.nll_sum, nll, 1e-6 * nll);
  EXPECT_EQ(r.target_tokens, int64_t(dst.size()));
}

TEST(WeightTraffic, CountsOneEmbeddingRowAndSkipsUnusedLayer0Tensors) {
  const auto model = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  const WeightTraffic w = weight_traffic(*model);
  int64_t all = 0, params = 0;
  for (const auto& t : model->checkpoint().tensors()) all += int64_t(t.nbytes()), params += t.numel();
  const int64_t C = 128, V = 1000;
  int64_t unused = 0;
  for (const char* n : {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"})
    unused += int64_t(model->checkpoint().get(n).nbytes());
  EXPECT_GT(unused, 0);
  EXPECT_EQ(w.model_bytes, all);
  EXPECT_EQ(w.n_params, params);
  // Plus what the kernels' copies add: here the head's panels, padded to
  // whole panels (V = 1000 rows), where this CPU has them.
  EXPECT_GE(model->packed_weight_bytes_delta(), 0);
  EXPECT_EQ(w.bytes_per_token, all - (V - 1) * C * 4 - unused + model->packed_weight_bytes_delta());
}

// A GGUF of the official bf16 weights keeps the LoRA factors f32 (as
// llama.cpp's do): their values are bf16 values, so the kernels hold them as
// bf16 (ops/float_panels.h) and a token reads half their stored bytes.
TEST(WeightTraffic, CountsF32LoraFactorsHeldAsBf16AtHalfTheirSize) {
  if (!ops::float_panels::runs()) GTEST_SKIP() << "no float panels on this target";
  test::TempDir tmp;
  const std::string path = (tmp / "q8.gguf").string();
  write_rwkv7_gguf(Checkpoint::open(test::case_model_path("v7_tiny_L2_C128_V1000_bf16")), path, DType::Q8_0, {});
  const auto model = load_model(path);
  // The official code never reads layer 0's value-residual tensors.
  auto unused = [](const std::string& n) { return n == "blocks.0.att.v1" || n == "blocks.0.att.v2" || n == "blocks.0.att.v0"; };
  int64_t lora_f32 = 0;
  for (const auto& t : model->checkpoint().tensors()) {
    const bool factor = t.name.find(".att.") != std::string::npos && t.shape.size() == 2 &&
                        (t.name.back() == '1' || t.name.back() == '2') && !unused(t.name);
    if (factor && t.dtype == DType::F32) lora_f32 += int64_t(t.nbytes());
  }
  EXPECT_GT(lora_f32, 0);
  // The head (q8_0, V = 1000 rows) pads its last panel where it is packed.
  const auto& head = model->checkpoint().get("head.weight");
  const int64_t V = head.shape.front(), C = head.shape.back();
  const ops::Matrix H{head.data, head.dtype, V, C};
  const size_t head_pack = ops::linear_pack_bytes(H);
  const int64_t head_padding = head_pack == 0 ? 0 : int64_t(head_pack) - int64_t(head.nbytes());
  EXPECT_EQ(model->packed_weight_bytes_delta(), -lora_f32 / 2 + head_padding);
  const WeightTraffic w = weight_traffic(*model);
  int64_t stored = 0;
  for (const auto& t : model->checkpoint().tensors())
    if (t.name != "emb.weight" && !unused(t.name)) stored += int64_t(t.nbytes());
  const auto& emb = model->checkpoint().get("emb.weight");
  stored += int64_t(emb.nbytes()) / emb.shape.front();
  EXPECT_EQ(w.bytes_per_token, stored + model->packed_weight_bytes_delta());
}

}  // namespace
}  // namespace aviary
