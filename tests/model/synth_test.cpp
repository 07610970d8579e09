// Random-weight RWKV-7 checkpoints with the official shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/test_util.h"
#include "model/gguf_rwkv7.h"
#include "model/model.h"
#include "model/synth.h"
#include "util/error.h"

namespace aviary {
namespace {

// The released RWKV-7 sizes: layers, width and LoRA ranks (w, a, v, g) as
// the official checkpoints have them.
struct Expected {
  const char* name;
  int64_t L, C, w, a, v, g;
};
constexpr Expected kOfficial[] = {
    {"0.1B", 12, 768, 64, 64, 32, 128},   {"0.4B", 24, 1024, 64, 64, 32, 128},
    {"1.5B", 24, 2048, 96, 96, 64, 256},  {"2.9B", 32, 2560, 96, 96, 64, 320},
    {"7.2B", 32, 4096, 128, 128, 96, 480},
};

TEST(SynthShapes, MatchTheOfficialTable) {
  ASSERT_EQ(synth_shapes().size(), std::size(kOfficial));
  for (const Expected& e : kOfficial) {
    const SynthShape& s = synth_shape(e.name);
    EXPECT_EQ(s.n_layer, e.L) << e.name;
    EXPECT_EQ(s.n_embd, e.C) << e.name;
    EXPECT_EQ(s.ffn_dim(), 4 * e.C) << e.name;
    EXPECT_EQ(s.lora_w, e.w) << e.name;
    EXPECT_EQ(s.lora_a, e.a) << e.name;
    EXPECT_EQ(s.lora_v, e.v) << e.name;
    EXPECT_EQ(s.lora_g, e.g) << e.name;
  }
  EXPECT_EQ(SynthShape::kHeadSize, 64);
  EXPECT_EQ(SynthShape::kVocab, 65536);
}

TEST(SynthShapes, RanksFollowTheTrainingCodeFormula) {
  for (const SynthShape& s : synth_shapes()) {
    EXPECT_EQ(s.lora_w, official_lora_rank(LoraKind::Decay, s.n_embd)) << s.name;
    EXPECT_EQ(s.lora_a, official_lora_rank(LoraKind::InContextRate, s.n_embd)) << s.name;
    EXPECT_EQ(s.lora_v, official_lora_rank(LoraKind::ValueResidual, s.n_embd)) << s.name;
    if (s.name != "0.4B") {
      EXPECT_EQ(s.lora_g, official_lora_rank(LoraKind::Gate, s.n_embd)) << s.name;
    }
  }
  EXPECT_EQ(official_lora_rank(LoraKind::Gate, 1024), 160);  // the released 0.4B uses 128 instead
  EXPECT_EQ(official_lora_rank(LoraKind::Decay, 64), 32);    // never below 32
}

TEST(SynthShapes, UnknownNameListsTheKnownOnes) {
  const std::string e = test::error_of([] { synth_shape("3B"); });
  EXPECT_NE(e.find("'3B'"), std::string::npos) << e;
  EXPECT_NE(e.find("0.1B, 0.4B, 1.5B, 2.9B, 7.2B"), std::string::npos) << e;
}

TEST(Synth, SmallModelLoadsWithOfficialDimsAndRunsFinite) {
  test::TempDir tmp;
  const std::string path = (tmp / "synth.pth").string();
  SynthOptions o;
  o.layers = 2;
  o.seed = 7;
  write_synth_rwkv7(path, synth_shape("0.1B"), o);
  const auto model = load_model(path);
  const ModelConfig& c = model->config();
  EXPECT_EQ(c.arch, Arch::RWKV7);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_EQ(c.head_size, 64);
  EXPECT_EQ(c.vocab_size, 65536);
  EXPECT_EQ(c.ffn_dim, 3072);
  EXPECT_EQ(c.lora_w, 64);
  EXPECT_EQ(c.lora_a, 64);
  EXPECT_EQ(c.lora_v, 32);
  EXPECT_EQ(c.lora_g, 128);
  // Layer 0 carries the value-residual tensors the official files have.
  EXPECT_TRUE(model->checkpoint().has("blocks.0.att.v0"));
  EXPECT_TRUE(model->checkpoint().has("blocks.0.att.v2"));
  EXPECT_EQ(model->checkpoint().get("blocks.0.att.x_r").dtype, DType::BF16);

  State state = model->new_state();
  std::vector<float> logits;
  const std::vector<int32_t> tokens{0, 510, 3158, 65535, 11, 11};
  model->forward(tokens, state, logits, true);
  ASSERT_EQ(logits.size(), tokens.size() * 65536);
  double sq = 0;
  for (float v : logits) {
    ASSERT_TRUE(std::isfinite(v));
    sq += double(v) * v;
  }
  const double rms = std::sqrt(sq / double(logits.size()));
  EXPECT_GT(rms, 0.5);  // about 3 by construction
  EXPECT_LT(rms, 30.0);
}

TEST(Synth, SameSeedSameBytesDifferentSeedDifferent) {
  SynthOptions o;
  o.layers = 1;
  const SynthShape& s = synth_shape("0.1B");
  const SynthTensors a = make_synth_rwkv7(s, o), b = make_synth_rwkv7(s, o);
  o.seed = 1;
  const SynthTensors c = make_synth_rwkv7(s, o);
  ASSERT_EQ(a.buffers.size(), b.buffers.size());
  EXPECT_EQ(a.buffers, b.buffers);
  EXPECT_NE(a.buffers.front(), c.buffers.front());
  EXPECT_EQ(a.tensors.front().name, "emb.weight");
  EXPECT_EQ(a.tensors.back().name, "head.weight");
}

TEST(Synth, RefusesOtherFormatsAndTypes) {
  test::TempDir tmp;
  SynthOptions o;
  o.layers = 1;
  EXPECT_NE(test::error_of([&] { write_synth_rwkv7((tmp / "x.bin").string(), synth_shape("0.1B"), o); }).find(".gguf"),
            std::string::npos);
  o.dtype = DType::Q8_0;
  EXPECT_NE(test::error_of([&] { make_synth_rwkv7(synth_shape("0.1B"), o); }).find("q8_0"), std::string::npos);
}

TEST(Synth, GgufOutputLoadsWithTheSameConfig) {
  test::TempDir tmp;
  const std::string path = (tmp / "synth.gguf").string();
  SynthOptions o;
  o.layers = 2;
  o.dtype = DType::Q8_0;
  write_synth_rwkv7(path, synth_shape("0.1B"), o);
  EXPECT_FALSE(std::filesystem::exists(path + ".synth-tmp.pth"));  // the temporary is gone
  const Checkpoint gguf = Checkpoint::open(path);
  ASSERT_TRUE(is_rwkv7_gguf(gguf));
  const ModelConfig c = detect_config(official_rwkv7_view(gguf));
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.lora_w, 64);
  EXPECT_EQ(c.lora_g, 128);
  EXPECT_EQ(c.lora_v, 32);
  EXPECT_EQ(gguf.find("token_embd.weight")->dtype, DType::Q8_0);
}

}  // namespace
}  // namespace aviary
