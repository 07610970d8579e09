// GGUF tensors of the GGML block types Q4_1, Q5_0, Q5_1, Q5_K and Q6_K (as
// llama-quantize writes them): ggml's type ids, and a write / read round
// trip of each keeping the type, shape and bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_util.h"
#include "io/checkpoint.h"
#include "io/gguf_value.h"
#include "io/gguf_writer.h"

namespace aviary {
namespace {

TEST(GgufQuantTypes, GgmlTypeIdsAreGgmls) {
  struct Want {
    DType t;
    uint32_t id;
    const char* description;
  };
  for (const Want& w : {Want{DType::Q4_1, 3, "q4_1 (3)"}, Want{DType::Q5_0, 6, "q5_0 (6)"},
                        Want{DType::Q5_1, 7, "q5_1 (7)"}, Want{DType::Q5_K, 13, "q5_k (13)"},
                        Want{DType::Q6_K, 14, "q6_k (14)"}}) {
    EXPECT_EQ(ggml_type_of(w.t), w.id) << w.description;
    ASSERT_TRUE(dtype_of_ggml(w.id).has_value()) << w.description;
    EXPECT_EQ(*dtype_of_ggml(w.id), w.t) << w.description;
    EXPECT_EQ(ggml_type_description(w.id), w.description);
  }
  // Every DType maps to a ggml id and back.
  for (DType t : kAllDTypes) EXPECT_EQ(dtype_of_ggml(ggml_type_of(t)), t) << dtype_name(t);
  // Types Aviary still does not read stay refused.
  for (uint32_t id : {10u, 11u, 15u, 16u, 20u, 23u}) EXPECT_FALSE(dtype_of_ggml(id).has_value()) << id;
}

TEST(GgufQuantTypes, EachTypeRoundTripsThroughTheWriterAndReader) {
  test::TempDir tmp;
  const DType types[] = {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q5_K, DType::Q6_K};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<GgufTensorOut> tensors;
  for (DType t : types) {
    // Two rows of two blocks each, any bytes (the reader does not decode them).
    const int64_t cols = 2 * dtype_block_elems(t);
    std::vector<uint8_t> b(dtype_bytes(t, 2 * cols));
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i * 13 + size_t(t));
    bytes.push_back(std::move(b));
    tensors.push_back(gguf_tensor(std::string(dtype_name(t)), t, {2, cols}, bytes.back()));
  }
  const std::string p = (tmp / "types.gguf").string();
  GgufMetadata m;
  m.set("general.architecture", GgufValue::string("test"));
  write_gguf(p, m, tensors);
  const Checkpoint ck = Checkpoint::open(p);
  ASSERT_EQ(ck.tensors().size(), std::size(types));
  for (size_t i = 0; i < std::size(types); ++i) {
    const DType t = types[i];
    const TensorView& v = ck.get(std::string(dtype_name(t)));
    EXPECT_EQ(v.dtype, t);
    EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 2 * dtype_block_elems(t)}));
    EXPECT_EQ(0, std::memcmp(v.data, bytes[i].data(), bytes[i].size())) << dtype_name(t);
  }
}

}  // namespace
}  // namespace aviary
