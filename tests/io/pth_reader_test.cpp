// Reading the refdata checkpoints: names, shapes, dtypes and order against
// each manifest, and values across the fp32/bf16/fp16 variants.
#include <gtest/gtest.h>

#include <cstring>

#include "io/checkpoint.h"
#include "io_test_util.h"

namespace aviary::test {
namespace {

DType manifest_dtype(const std::string& s) {
  if (s == "float32") return DType::F32;
  if (s == "float16") return DType::F16;
  if (s == "bfloat16") return DType::BF16;
  throw std::runtime_error("unknown manifest dtype " + s);
}

TEST(PthReader, FindsAllRefdataCases) { EXPECT_GE(refdata_cases().size(), 10u); }

TEST(PthReader, EveryRefdataCaseMatchesItsManifest) {
  for (const std::string& name : refdata_cases()) {
    SCOPED_TRACE(name);
    const auto expected = read_json(refdata_case(name) / "manifest.json")["checkpoint"]["tensors"];
    const Checkpoint ckpt = Checkpoint::open((refdata_case(name) / "model.pth").string());
    EXPECT_EQ(ckpt.format(), CheckpointFormat::Pth);
    ASSERT_EQ(ckpt.tensors().size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const TensorView& t = ckpt.tensors()[i];  // file order is manifest order
      EXPECT_EQ(t.name, expected[i]["name"].get<std::string>());
      EXPECT_EQ(t.shape, expected[i]["shape"].get<std::vector<int64_t>>()) << t.name;
      EXPECT_EQ(t.dtype, manifest_dtype(expected[i]["dtype"])) << t.name;
      EXPECT_TRUE(t.is_contiguous()) << t.name;
      EXPECT_EQ(ckpt.find(t.name), &t);
    }
    EXPECT_NO_THROW(ckpt.verify_checksums());
  }
}

// torch aligns records to 64 bytes; the views point into the page-aligned
// map, so their addresses keep that alignment (and prove no copy was made
// into some other buffer of arbitrary alignment).
TEST(PthReader, TensorDataPointsIntoTheAlignedMap) {
  const Checkpoint ckpt = Checkpoint::open(small_pth().string());
  for (const TensorView& t : ckpt.tensors())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << t.name;
  EXPECT_EQ(ckpt.file_size(), std::filesystem::file_size(small_pth()));
  EXPECT_EQ(ckpt.path(), small_pth().string());
}

TEST(PthReader, GetAndHas) {
  const Checkpoint ckpt = Checkpoint::open(small_pth().string());
  EXPECT_TRUE(ckpt.has("emb.weight"));
  EXPECT_FALSE(ckpt.has("emb.weightx"));
  EXPECT_EQ(ckpt.get("head.weight").shape, (std::vector<int64_t>{1000, 128}));
  expect_error([&] { ckpt.get("nope"); }, {small_pth().string(), "missing tensor nope"});
}

// README: each bf16 (fp16) file holds its fp32 file's values rounded to nearest even.
void expect_rounded(const std::string& low_case, const std::string& f32_case, DType dtype) {
  SCOPED_TRACE(low_case);
  const Checkpoint low = Checkpoint::open((refdata_case(low_case) / "model.pth").string());
  const Checkpoint f32 = Checkpoint::open((refdata_case(f32_case) / "model.pth").string());
  ASSERT_EQ(low.tensors().size(), f32.tensors().size());
  for (const TensorView& t : f32.tensors()) {
    const TensorView& l = low.get(t.name);
    ASSERT_EQ(l.dtype, dtype);
    ASSERT_EQ(l.shape, t.shape);
    size_t mismatches = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      float f;
      std::memcpy(&f, t.data + 4 * i, 4);
      uint16_t h;
      std::memcpy(&h, l.data + 2 * i, 2);
      mismatches += h != (dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f));
    }
    EXPECT_EQ(mismatches, 0u) << t.name;
  }
}

TEST(PthReader, Bf16FilesHoldTheFp32ValuesRounded) {
  for (const char* v : {"v4", "v5", "v6", "v7"})
    expect_rounded(std::string(v) + "_tiny_L2_C128_V1000_bf16",
                   std::string(v) + "_tiny_L2_C128_V1000_fp32", DType::BF16);
}

TEST(PthReader, Fp16FileHoldsTheFp32ValuesRounded) {
  expect_rounded("v4_tiny_L2_C128_V1000_fp16", "v4_tiny_L2_C128_V1000_fp32", DType::F16);
}

TEST(PthReader, AtReadsValuesAsFloat) {
  const Checkpoint f32 =
      Checkpoint::open((refdata_case("v4_tiny_L2_C128_V1000_fp32") / "model.pth").string());
  const Checkpoint bf =
      Checkpoint::open((refdata_case("v4_tiny_L2_C128_V1000_bf16") / "model.pth").string());
  const TensorView& a = f32.get("emb.weight");
  const TensorView& b = bf.get("emb.weight");
  for (int64_t i : {int64_t(0), int64_t(129), a.numel() - 1})
    EXPECT_EQ(b.at(i), bf16_to_f32(f32_to_bf16(a.at(i))));
}

}  // namespace
}  // namespace aviary::test
