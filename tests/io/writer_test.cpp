// write_pth and write_safetensors: byte-identical to torch.save for the
// refdata files, and round trips that give back identical tensors.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>

#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "io/zip_reader.h"
#include "io_test_util.h"

namespace aviary::test {
namespace {

// Tensors with owned, deterministic bytes.
struct Owned {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorData> tensors;
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, uint32_t seed) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint8_t> bytes(size_t(n) * dtype_size(dtype));
    std::mt19937 rng(seed);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    buffers.push_back(std::move(bytes));
    tensors.push_back({name, dtype, std::move(shape), {}});
  }
  const std::vector<TensorData>& get() {
    for (size_t i = 0; i < tensors.size(); ++i) tensors[i].bytes = buffers[i];
    return tensors;
  }
};

void expect_same(const Checkpoint& ckpt, const std::vector<TensorData>& want) {
  ASSERT_EQ(ckpt.tensors().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorView& t = ckpt.tensors()[i];
    EXPECT_EQ(t.name, want[i].name);
    EXPECT_EQ(t.dtype, want[i].dtype) << t.name;
    EXPECT_EQ(t.shape, want[i].shape) << t.name;
    EXPECT_TRUE(t.is_contiguous()) << t.name;
    ASSERT_EQ(t.nbytes(), want[i].bytes.size()) << t.name;
    if (t.nbytes() > 0) {  // an empty vector's data() may be null, which memcmp must not see
      EXPECT_EQ(std::memcmp(t.data, want[i].bytes.data(), t.nbytes()), 0) << t.name;
    }
  }
}

std::vector<TensorData> views_of(const Checkpoint& ckpt) {
  std::vector<TensorData> out;
  for (const TensorView& t : ckpt.tensors()) out.push_back(tensor_data(t));
  return out;
}

Owned mixed_tensors() {
  Owned o;
  o.add("emb.weight", DType::BF16, {7, 5}, 1);
  o.add("scalar", DType::F32, {}, 2);
  o.add("empty", DType::F16, {3, 0}, 3);
  o.add("blocks.0.att.time_mix_k", DType::F32, {1, 1, 6}, 4);
  o.add("five_dims", DType::F16, {2, 1, 3, 1, 2}, 5);
  o.add("unicode name \xc3\xa9", DType::BF16, {4}, 6);
  return o;
}

// The strongest compatibility check available without torch: re-writing a
// torch.save file's tensors reproduces the file byte for byte.
TEST(Writer, PthOfRefdataTensorsIsByteIdenticalToTorchSave) {
  TempDir tmp;
  for (const std::string& name : refdata_cases()) {
    SCOPED_TRACE(name);
    const auto original = refdata_case(name) / "model.pth";
    const Checkpoint ckpt = Checkpoint::open(original.string());
    write_pth((tmp / "out.pth").string(), views_of(ckpt), {.archive_name = "model"});
    EXPECT_TRUE(read_bytes(tmp / "out.pth") == read_bytes(original));
  }
}

TEST(Writer, PthRoundTrip) {
  TempDir tmp;
  Owned o = mixed_tensors();
  write_pth((tmp / "m.pth").string(), o.get());
  const Checkpoint ckpt = Checkpoint::open((tmp / "m.pth").string());
  expect_same(ckpt, o.get());
  EXPECT_NO_THROW(ckpt.verify_checksums());
  EXPECT_EQ(ckpt.get("empty").strides, (std::vector<int64_t>{1, 1}));  // torch's strides for [3, 0]
  const auto records = read_records(tmp / "m.pth");
  EXPECT_EQ(records.front().name, "archive/data.pkl");
  EXPECT_EQ(records.back().name, "archive/version");
  EXPECT_EQ(records.back().bytes, "3\n");
}

TEST(Writer, PthWithZip64RecordsRoundTrips) {
  TempDir tmp;
  Owned o = mixed_tensors();
  write_pth((tmp / "m.pth").string(), o.get(), {.zip64_threshold = 0});
  const Checkpoint ckpt = Checkpoint::open((tmp / "m.pth").string());
  expect_same(ckpt, o.get());
  EXPECT_NO_THROW(ckpt.verify_checksums());
  for (const TensorView& t : ckpt.tensors())
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u);
  // Only sizes or only offsets over the threshold.
  write_pth((tmp / "n.pth").string(), o.get(), {.zip64_threshold = 200});
  expect_same(Checkpoint::open((tmp / "n.pth").string()), o.get());
}

TEST(Writer, PthWithMoreThanOneBatchOfItems) {  // Python's pickler batches SETITEMS by 1000
  TempDir tmp;
  Owned o;
  for (int i = 0; i < 1001; ++i) {
    std::string name = "t";  // not "t" + ...: GCC 12 warns falsely (-Wrestrict) on that
    name += std::to_string(i);
    o.add(name, DType::F32, {2}, uint32_t(i));
  }
  write_pth((tmp / "m.pth").string(), o.get());
  expect_same(Checkpoint::open((tmp / "m.pth").string()), o.get());
}

TEST(Writer, SafetensorsRoundTrip) {
  TempDir tmp;
  Owned o = mixed_tensors();
  write_safetensors((tmp / "m.safetensors").string(), o.get(), {{"format", "pt"}, {"note", "x"}});
  const Checkpoint ckpt = Checkpoint::open((tmp / "m.safetensors").string());
  EXPECT_EQ(ckpt.format(), CheckpointFormat::Safetensors);
  expect_same(ckpt, o.get());
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
  EXPECT_NO_THROW(ckpt.verify_checksums());
  const std::string bytes = read_bytes(tmp / "m.safetensors");
  EXPECT_EQ((bytes.size() - std::accumulate(o.buffers.begin(), o.buffers.end(), size_t(0),
                                            [](size_t n, const auto& b) { return n + b.size(); })) %
                8,
            0u);
}

TEST(Writer, RefdataThroughSafetensorsAndBack) {
  TempDir tmp;
  const Checkpoint pth =
      Checkpoint::open((refdata_case("v7_tiny_L2_C128_V1000_fp32") / "model.pth").string());
  write_safetensors((tmp / "m.bin").string(), views_of(pth));  // detected by content, not by name
  const Checkpoint st = Checkpoint::open((tmp / "m.bin").string());
  expect_same(st, views_of(pth));
  write_pth((tmp / "back.safetensors").string(), views_of(st));
  expect_same(Checkpoint::open((tmp / "back.safetensors").string()), views_of(pth));
}

TEST(Writer, NonContiguousViewsAreCopiedInCOrder) {
  const float storage[6] = {0, 1, 2, 3, 4, 5};
  TensorView t;  // the transpose of a 2x3 matrix
  t.name = "t";
  t.shape = {3, 2};
  t.strides = {1, 3};
  t.data = reinterpret_cast<const uint8_t*>(storage);
  EXPECT_THROW(tensor_data(t), Error);
  const std::vector<uint8_t> bytes = contiguous_bytes(t);
  std::vector<float> v(6);
  std::memcpy(v.data(), bytes.data(), 24);
  EXPECT_EQ(v, (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Writer, RejectsBadTensorData) {
  TempDir tmp;
  const std::string path = (tmp / "bad.pth").string();
  Owned o;
  o.add("a", DType::F32, {2, 3}, 1);
  std::vector<TensorData> t = o.get();
  t[0].shape = {2, 4};
  for (auto write :
       {+[](const std::string&p, const std::vector<TensorData>&v) { write_pth(p, v); },
        +[](const std::string&p, const std::vector<TensorData>&v) { write_safetensors(p, v); }}) {
    expect_error([&] { write(path, t); }, {path, "tensor 'a'", "24 bytes given, expected 8 x 4"});
    std::vector<TensorData> dup = o.get();
    dup.push_back(dup[0]);
    expect_error([&] { write(path, dup); }, {path, "duplicate tensor 'a'"});
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing left behind, not even a temp file
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

}  // namespace
}  // namespace aviary::test
