// Loading real and rewritten checkpoints: other dtypes, other formats, other
// key orders, and damaged copies that must fail with a clear message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "common/fp32_activations.h"
#include "common/test_util.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "model/model.h"
#include "model/weights.h"
#include "ops/linear.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::case_tokens;

namespace fs = std::filesystem;

// A rewritten copy of a checkpoint: each tensor may be edited, dropped
// (return false) or converted; owned bytes live in `store`.
struct Rewriter {
  std::vector<std::vector<uint8_t>> store;
  std::vector<TensorData> out;

  void add(const TensorView& v, DType as, std::vector<int64_t> shape = {}) {
    std::vector<uint8_t> bytes(size_t(v.numel()) * dtype_size(as));
    for (int64_t i = 0; i < v.numel(); ++i) {
      const float f = v.at(i);
      if (as == DType::F32) std::memcpy(&bytes[size_t(i) * 4], &f, 4);
      else {
        const uint16_t h = as == DType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
        std::memcpy(&bytes[size_t(i) * 2], &h, 2);
      }
    }
    store.push_back(std::move(bytes));
    out.push_back({v.name, as, shape.empty() ? v.shape : shape, store.back()});
  }
};

std::vector<float> run_all(const std::string& path, const std::vector<int32_t>& tokens) {
  const auto model = load_model(path);
  State s = model->new_state();
  std::vector<float> logits;
  model->forward(tokens, s, logits, true);
  return logits;
}

std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Load, Fp16CopyOfBf16ModelGivesTheSameLogits) {
  // Every bf16 value of these weights is exactly representable in fp16, so
  // the fp16 file must reproduce the bf16 reference to fp32 rounding.
  const std::string name = "v7_tiny_L2_C128_V1000_bf16";
  const Checkpoint src = Checkpoint::open(test::case_model_path(name));
  Rewriter rw;
  for (const auto& t : src.tensors()) rw.add(t, DType::F16);
  test::TempDir tmp;
  const auto path = (tmp / "f16.pth").string();
  write_pth(path, rw.out);
  {
    const test::Fp32Activations fp32;  // fp32 tolerance
    const auto logits = run_all(path, case_tokens(name));
    EXPECT_LE(test::max_abs_diff(logits, test::read_floats(test::refdata_case(name) / "logits_seq_full.bin")), 1e-3f);
  }
  // Packed as bf16 where every value is one, the copy takes the bf16 model's
  // kernels: with bf16 activations too, close to the bf16 model's logits
  // (the few values below fp16's normal range lose bits in the copy).
  const auto a = run_all(path, case_tokens(name)), b = run_all(test::case_model_path(name), case_tokens(name));
  EXPECT_LE(test::max_abs_diff(a, b), 1e-5f);  // measured 4.8e-7
}

TEST(Load, SafetensorsAndReorderedPthGiveIdenticalLogits) {
  const std::string name = "v7_tiny_L2_C128_V1000_fp32";
  const Checkpoint src = Checkpoint::open(test::case_model_path(name));
  const auto tokens = case_tokens(name);
  const auto want = run_all(test::case_model_path(name), tokens);
  std::vector<TensorData> tensors;
  for (const auto& t : src.tensors()) tensors.push_back(tensor_data(t));
  test::TempDir tmp;
  write_safetensors((tmp / "m.safetensors").string(), tensors);
  EXPECT_EQ(run_all((tmp / "m.safetensors").string(), tokens), want);
  // Released G1 files order their keys differently: lookups are by name.
  std::reverse(tensors.begin(), tensors.end());
  write_pth((tmp / "reversed.pth").string(), tensors);
  EXPECT_EQ(run_all((tmp / "reversed.pth").string(), tokens), want);
}

// Writes a copy of a case's checkpoint with `edit` applied to the tensor list.
std::string damaged_copy(const test::TempDir& tmp, const std::function<void(Rewriter&, const TensorView&)>& edit,
                         const std::string& name = "v7_tiny_L2_C128_V1000_fp32") {
  const Checkpoint src = Checkpoint::open(test::case_model_path(name));
  Rewriter rw;
  for (const auto& t : src.tensors()) edit(rw, t);
  const auto path = (tmp / "damaged.pth").string();
  write_pth(path, rw.out);
  return path;
}

TEST(Load, LayerZeroValueResidualTensorsAreNotNeeded) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name.rfind("blocks.0.att.v", 0) != 0 || t.name.find("weight") != std::string::npos) rw.add(t, t.dtype);
  });
  const auto tokens = case_tokens("v7_tiny_L2_C128_V1000_fp32");
  EXPECT_EQ(run_all(path, tokens), run_all(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"), tokens));
}

// The kernels' re-laid copies share buffers in load order: each matrix's
// panels start on a cache line right after the previous one's, so decode's
// products stream one region (on huge pages) instead of a mapping each.
TEST(Load, PackedWeightsFollowEachOtherInLoadOrder) {
  const Checkpoint ckpt = Checkpoint::open(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  WeightReader r(ckpt);
  const int64_t C = 128;
  std::vector<ops::Matrix> m;
  for (const char* name : {"receptance", "key", "value", "output"})
    m.push_back(r.projection(std::string("blocks.0.att.") + name + ".weight", C, C));
  if (ops::linear_pack_bytes(m[0]) == 0) GTEST_SKIP() << "no panels on this CPU's kernels";
  for (size_t i = 0; i < m.size(); ++i) {
    ASSERT_NE(m[i].packed, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m[i].packed) % 64, 0u) << i;
    if (i == 0) continue;
    const size_t previous = (ops::linear_pack_bytes(m[i - 1]) + 63) / 64 * 64;
    EXPECT_EQ(static_cast<const uint8_t*>(m[i].packed), static_cast<const uint8_t*>(m[i - 1].packed) + previous) << i;
  }
  const std::deque<PageBuffer> owned = r.take_owned();
  EXPECT_EQ(owned.size(), 1u);  // one shared buffer holds all four
}

TEST(LoadErrors, MissingTensorIsNamed) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name != "blocks.1.att.k_a") rw.add(t, t.dtype);
  });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing tensor 'blocks.1.att.k_a'"), std::string::npos) << msg;
}

TEST(LoadErrors, WrongShapeNamesExpectedAndFound) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    rw.add(t, t.dtype, t.name == "blocks.1.ffn.value.weight" ? std::vector<int64_t>{512, 128} : t.shape);
  });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("'blocks.1.ffn.value.weight' has shape [512, 128], expected [128, 512]"), std::string::npos)
      << msg;
}

TEST(LoadErrors, InconsistentHeadSizeIsRefused) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    rw.add(t, t.dtype, t.name == "blocks.0.att.r_k" ? std::vector<int64_t>{4, 32} : t.shape);
  });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("r_k"), std::string::npos) << msg;
}

TEST(LoadErrors, Rwkv6MissingAMixTensorIsNamed) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name != "blocks.1.att.time_maa_k") rw.add(t, t.dtype);
  }, "v6_tiny_L2_C128_V1000_fp32");
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("missing tensor 'blocks.1.att.time_maa_k'"), std::string::npos) << msg;
}

TEST(LoadErrors, Rwkv5ResearchLayoutsAreRefusedByName) {
  test::TempDir tmp;
  // 5.0: no gate.
  auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name.find("gate") == std::string::npos) rw.add(t, t.dtype);
  }, "v5_tiny_L2_C128_V1000_fp32");
  std::string msg = load_error(path);
  EXPECT_NE(msg.find("unsupported architecture: RWKV-5.0"), std::string::npos) << msg;
  // 5.1: one decay per head.
  path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name.find("time_decay") != std::string::npos || t.name.find("time_faaaa") != std::string::npos) {
      TensorView head = t;
      head.shape = {2};
      head.strides = {64};
      rw.add(head, t.dtype);
    } else {
      rw.add(t, t.dtype);
    }
  }, "v5_tiny_L2_C128_V1000_fp32");
  msg = load_error(path);
  EXPECT_NE(msg.find("unsupported architecture: RWKV-5.1"), std::string::npos) << msg;
}

TEST(LoadErrors, UnknownBlockLayoutIsRefused) {
  test::TempDir tmp;
  const auto path = damaged_copy(tmp, [](Rewriter& rw, const TensorView& t) {
    if (t.name.find(".att.") == std::string::npos) rw.add(t, t.dtype);
  });
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find("match no known RWKV version"), std::string::npos) << msg;
}

TEST(LoadErrors, NoRwkvTensorsAtAll) {
  test::TempDir tmp;
  const std::vector<float> one = {1.f};
  write_pth((tmp / "x.pth").string(),
            {{"weight", DType::F32, {1}, {reinterpret_cast<const uint8_t*>(one.data()), 4}}});
  const std::string msg = load_error((tmp / "x.pth").string());
  EXPECT_NE(msg.find("not an RWKV checkpoint"), std::string::npos) << msg;
}

}  // namespace
}  // namespace aviary
