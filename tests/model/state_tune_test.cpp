// State-tuned initial states: files with the official key names and layout,
// built here, must change the output exactly as the equivalent raw state does.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include "common/test_util.h"
#include "io/checkpoint_writer.h"
#include "model/model.h"
#include "model/state_file.h"
#include "model/state_tune.h"
#include "util/dtype.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::case_tokens;
using test::error_of;

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

// time_state tensors as RWKV-PEFT saves them: blocks.N.att.time_state [H, N, N].
struct TuneFile {
  int64_t H = 0, N = 0;
  std::vector<std::vector<float>> values;  // per layer, [H, N, N], as stored (after rounding)
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<TensorData> tensors;

  TuneFile(const ModelConfig& c, DType dtype, uint32_t seed) : H(c.n_head), N(c.head_size) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (int64_t layer = 0; layer < c.n_layer; ++layer) {
      std::vector<float> v(size_t(H * N * N));
      std::vector<uint8_t> b(v.size() * dtype_size(dtype));
      for (size_t i = 0; i < v.size(); ++i) {
        v[i] = dist(rng);
        if (dtype == DType::BF16) {
          const uint16_t h = f32_to_bf16(v[i]);
          v[i] = bf16_to_f32(h);
          std::memcpy(&b[i * 2], &h, 2);
        } else {
          std::memcpy(&b[i * 4], &v[i], 4);
        }
      }
      values.push_back(std::move(v));
      bytes.push_back(std::move(b));
    }
    for (int64_t layer = 0; layer < c.n_layer; ++layer)
      tensors.push_back({"blocks." + std::to_string(layer) + ".att.time_state", dtype, {H, N, N}, bytes[size_t(layer)]});
  }

  // The official state the loaders build from it: zero token shifts and, per
  // layer, time_state as is (v7) or transposed per head (v5/v6, .transpose(1,2)).
  std::vector<float> raw_state(const Model& model, bool transpose) const {
    State s = model.new_state();
    for (size_t layer = 0; layer < values.size(); ++layer) {
      auto dst = s.tensor(layer * 3 + 1);
      EXPECT_EQ(s.layout()[layer * 3 + 1].name, "blocks." + std::to_string(layer) + ".att.wkv_state");
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < N; ++i)
          for (int64_t j = 0; j < N; ++j)
            dst[size_t((h * N + (transpose ? j : i)) * N + (transpose ? i : j))] =
                values[layer][size_t((h * N + i) * N + j)];
    }
    return {s.raw().begin(), s.raw().end()};
  }
};

std::vector<float> run(const Model& model, State state, const std::vector<int32_t>& tokens) {
  std::vector<float> logits;
  model.forward(tokens, state, logits, true);
  return logits;
}

struct TuneCase {
  std::string model;
  bool transpose;
  DType dtype;
};

class StateTune : public ::testing::TestWithParam<TuneCase> {};

TEST_P(StateTune, ChangesTheOutputExactlyAsTheOfficialRawState) {
  const auto& c = GetParam();
  const auto model = load_model(test::case_model_path(c.model));
  const auto tokens = case_tokens(c.model);
  const TuneFile tune(model->config(), c.dtype, 1234);
  test::TempDir tmp;
  const auto pth = (tmp / "state.pth").string(), st = (tmp / "state.safetensors").string();
  write_pth(pth, tune.tensors);
  write_safetensors(st, tune.tensors);

  const State tuned = load_state_tune(pth, *model);
  EXPECT_EQ(std::vector<float>(tuned.raw().begin(), tuned.raw().end()), tune.raw_state(*model, c.transpose));
  State raw = model->new_state();
  raw.load_raw(tune.raw_state(*model, c.transpose), "raw");
  const auto want = run(*model, raw, tokens);
  EXPECT_EQ(run(*model, tuned, tokens), want);
  EXPECT_NE(run(*model, model->new_state(), tokens), want) << "the tuned state changed nothing";
  EXPECT_EQ(run(*model, load_initial_state(pth, *model), tokens), want);
  EXPECT_EQ(run(*model, load_state_tune(st, *model), tokens), want);
}

INSTANTIATE_TEST_SUITE_P(Versions, StateTune,
                         ::testing::Values(TuneCase{"v5_tiny_L2_C128_V1000_fp32", true, DType::F32},
                                           TuneCase{"v6_tiny_L2_C128_V1000_fp32", true, DType::BF16},
                                           TuneCase{"v6_tiny_L2_C128_V1000_bf16", true, DType::F32},
                                           TuneCase{"v7_tiny_L2_C128_V1000_fp32", false, DType::BF16},
                                           TuneCase{"v7_tiny_L2_C128_V1000_bf16", false, DType::F32}),
                         [](const auto& info) { return info.param.model; });

TEST(StateTuneMerged, AModelWithMergedTimeStateIsItsOwnInitialState) {
  // RWKV-PEFT's merge_state.py adds the time_state tensors to the model file.
  const std::string name = "v7_tiny_L2_C128_V1000_fp32";
  const auto base = load_model(test::case_model_path(name));
  const TuneFile tune(base->config(), DType::BF16, 99);
  std::vector<TensorData> tensors = tune.tensors;
  for (const auto& t : base->checkpoint().tensors()) tensors.push_back(tensor_data(t));
  test::TempDir tmp;
  const auto merged_path = (tmp / "merged.pth").string();
  write_pth(merged_path, tensors);
  const auto merged = load_model(merged_path);
  State raw = base->new_state();
  raw.load_raw(tune.raw_state(*base, false), "raw");
  const auto tokens = case_tokens(name);
  EXPECT_EQ(run(*merged, load_initial_state(merged_path, *merged), tokens), run(*base, raw, tokens));
}

// A tune file for the v7 tiny model, edited by `edit` before writing.
std::string tune_error(const std::function<void(std::vector<TensorData>&)>& edit,
                       const std::string& name = "v7_tiny_L2_C128_V1000_fp32") {
  const auto model = load_model(test::case_model_path(name));
  TuneFile tune(model->config(), DType::F32, 7);
  edit(tune.tensors);
  test::TempDir tmp;
  const auto path = (tmp / "state.pth").string();
  write_pth(path, tune.tensors);
  const std::string msg = error_of([&] { load_initial_state(path, *model); });
  EXPECT_HAS(msg, path);
  return msg;
}

TEST(StateTuneErrors, MissingLayerIsNamed) {
  const std::string msg = tune_error([](auto& t) { t.pop_back(); });
  EXPECT_HAS(msg, "missing tensor 'blocks.1.att.time_state'");
}

TEST(StateTuneErrors, WrongShapeNamesExpectedAndFound) {
  const std::string msg = tune_error([](auto& t) {
    t[0].shape = {2, 32, 128};
  });
  EXPECT_HAS(msg, "'blocks.0.att.time_state' has shape [2, 32, 128], expected [2, 64, 64]");
}

TEST(StateTuneErrors, AFileForADeeperModelIsRefused) {
  const std::string msg = tune_error([](auto& t) {
    t.push_back(t[0]);
    t.back().name = "blocks.2.att.time_state";
  });
  EXPECT_HAS(msg, "has only 2 layers");
}

TEST(StateTuneErrors, AFileWithoutTimeStateIsRefused) {
  const auto model = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  const std::string msg = error_of([&] { load_initial_state(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"), *model); });
  EXPECT_HAS(msg, "no 'blocks.N.att.time_state' tensors");
}

TEST(StateTuneErrors, Rwkv4HasNoTunableState) {
  const auto model = load_model(test::case_model_path("v4_tiny_L2_C128_V1000_fp32"));
  test::TempDir tmp;
  const std::vector<float> zeros(2 * 64 * 64);
  const auto path = (tmp / "state.pth").string();
  write_pth(path, {{"blocks.0.att.time_state", DType::F32, {2, 64, 64},
                    {reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size() * 4}}});
  EXPECT_HAS(error_of([&] { load_initial_state(path, *model); }), "RWKV-4 models have no matrix-valued state");
}

TEST(StateTuneErrors, ARawFloatFileIsPointedToStateInF32) {
  const auto model = load_model(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  const auto raw = (test::refdata_case("v7_tiny_L2_C128_V1000_fp32") / "state_prefix.bin").string();
  const std::string msg = error_of([&] { load_initial_state(raw, *model); });
  EXPECT_HAS(msg, raw);
  EXPECT_HAS(msg, "--state-in-f32");
}

}  // namespace
}  // namespace aviary
