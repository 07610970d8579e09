// GGUF reading and writing: the exact bytes of a tiny file against the
// specification (ggml docs/gguf.md), round trips of every value and tensor
// type, and damaged files (hand-made and fuzzed) giving clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/test_util.h"
#include "io/checkpoint.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "io/le_bytes.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::error_of;

std::string le32(uint32_t v) {
  std::string s;
  append_le32(s, v);
  return s;
}
std::string le64(uint64_t v) {
  std::string s;
  append_le64(s, v);
  return s;
}
std::string gstr(const std::string& s) { return le64(s.size()) + s; }

std::span<const uint8_t> as_span(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4};
}

class GgufTest : public ::testing::Test {
 protected:
  test::TempDir tmp_;
  std::string path(const std::string& name) const { return (tmp_ / name).string(); }
};

TEST_F(GgufTest, TinyFileMatchesTheSpecificationByteForByte) {
  GgufMetadata m;
  m.set("general.architecture", GgufValue::string("toy"));
  m.set("toy.n", GgufValue::u32(7));
  const std::vector<float> data = {1, 2, 3, 4, 5, 6};
  const std::string p = path("tiny.gguf");
  const uint64_t size = write_gguf(p, m, {gguf_tensor("t", DType::F32, {2, 3}, as_span(data))});

  std::string want = "GGUF" + le32(3) + le64(1) + le64(2);
  want += gstr("general.architecture") + le32(8) + gstr("toy");  // type 8: string
  want += gstr("toy.n") + le32(4) + le32(7);                      // type 4: u32
  // Tensor info: name, n_dims, ne (reversed: the row length first), ggml type, offset.
  want += gstr("t") + le32(2) + le64(3) + le64(2) + le32(0) + le64(0);
  want.append((32 - want.size() % 32) % 32, '\0');  // default alignment 32
  ASSERT_EQ(want.size() % 32, 0u);
  want.append(reinterpret_cast<const char*>(data.data()), 24);
  want.append(8, '\0');  // the data is padded to the alignment too
  const std::string got = test::read_bytes(p);
  EXPECT_EQ(test::to_hex(got), test::to_hex(want));
  EXPECT_EQ(size, want.size());
}

GgufMetadata every_value_type() {
  GgufMetadata m;
  m.set("a.u8", GgufValue::u8(250));
  m.set("a.i8", GgufValue::i8(-100));
  m.set("a.u16", GgufValue::u16(65000));
  m.set("a.i16", GgufValue::i16(-32000));
  m.set("a.u32", GgufValue::u32(4000000000u));
  m.set("a.i32", GgufValue::i32(-2000000000));
  m.set("a.u64", GgufValue::u64(UINT64_MAX));
  m.set("a.i64", GgufValue::i64(INT64_MIN));
  m.set("a.f32", GgufValue::f32(-1.5f));
  m.set("a.f64", GgufValue::f64(1e-300));
  m.set("a.bool", GgufValue::boolean(true));
  m.set("a.str", GgufValue::string(std::string("with\0nul and \xe4\xb8\x80", 16)));
  m.set("a.empty", GgufValue::array(GgufType::I32, {}));
  m.set("a.strs", GgufValue::array(GgufType::String, {GgufValue::string("x"), GgufValue::string("")}));
  m.set("a.nested", GgufValue::array(GgufType::Array, {GgufValue::array(GgufType::U8, {GgufValue::u8(1)}),
                                                       GgufValue::array(GgufType::F32, {GgufValue::f32(2)})}));
  return m;
}

TEST_F(GgufTest, RoundTripsEveryValueAndTensorTypeAtAnyAlignmentAndVersion) {
  for (const uint32_t version : {2u, 3u}) {
    for (const uint32_t alignment : {32u, 64u}) {
      GgufMetadata m = every_value_type();
      m.version = version;
      m.alignment = alignment;
      if (alignment != 32) m.set("general.alignment", GgufValue::u32(alignment));
      const std::vector<float> f = {1.f, -2.f, 3.5f, 0.f};
      std::vector<uint8_t> q8(2 * 34), q4k(144), f16(2 * 32 * 2);
      for (size_t i = 0; i < q8.size(); ++i) q8[i] = uint8_t(i * 7);
      for (size_t i = 0; i < q4k.size(); ++i) q4k[i] = uint8_t(i * 3);
      for (size_t i = 0; i < f16.size(); ++i) f16[i] = uint8_t(i);
      const std::vector<GgufTensorOut> tensors = {
          gguf_tensor("f", DType::F32, {4}, as_span(f)),
          gguf_tensor("h", DType::F16, {2, 32}, f16),
          gguf_tensor("b", DType::BF16, {1, 2, 32}, f16),
          gguf_tensor("q8", DType::Q8_0, {1, 64}, q8),
          gguf_tensor("q4k", DType::Q4_K, {256}, q4k),
      };
      const std::string p = path("rt.gguf");
      write_gguf(p, m, tensors);
      const Checkpoint ck = Checkpoint::open(p);
      ASSERT_EQ(ck.format(), CheckpointFormat::Gguf);
      ASSERT_NE(ck.gguf_metadata(), nullptr);
      EXPECT_EQ(ck.gguf_metadata()->version, version);
      EXPECT_EQ(ck.gguf_metadata()->alignment, alignment);
      EXPECT_EQ(ck.gguf_metadata()->entries, m.entries);
      EXPECT_EQ(ck.gguf_metadata()->get("a.u64").as_u64(), UINT64_MAX);
      ASSERT_EQ(ck.tensors().size(), 5u);
      EXPECT_EQ(ck.get("b").shape, (std::vector<int64_t>{1, 2, 32}));
      EXPECT_EQ(ck.get("q8").dtype, DType::Q8_0);
      EXPECT_EQ(0, std::memcmp(ck.get("f").data, f.data(), 16));
      EXPECT_EQ(0, std::memcmp(ck.get("q8").data, q8.data(), q8.size()));
      EXPECT_EQ(0, std::memcmp(ck.get("q4k").data, q4k.data(), q4k.size()));
      EXPECT_EQ(0, std::memcmp(ck.get("b").data, f16.data(), f16.size()));
      for (const auto& t : ck.tensors())
        EXPECT_EQ((t.data - ck.file()->data()) % alignment, 0) << t.name;
      // Writing what was read gives the same bytes.
      std::vector<GgufTensorOut> again;
      for (const auto& t : ck.tensors())
        again.push_back(gguf_tensor(t.name, t.dtype, t.shape, {t.data, dtype_bytes(t.dtype, t.numel())}));
      write_gguf(path("again.gguf"), *ck.gguf_metadata(), again);
      EXPECT_EQ(test::read_bytes(path("again.gguf")), test::read_bytes(p));
    }
  }
}

TEST_F(GgufTest, WriterRefusesInvalidInput) {
  GgufMetadata m;
  const std::vector<float> f(33);
  EXPECT_NE(error_of([&] { write_gguf(path("x"), m, {gguf_tensor("q", DType::Q8_0, {1, 33}, {})}); }), "(no error)");
  EXPECT_NE(error_of([&] { gguf_tensor("f", DType::F32, {2}, as_span(f)); }).find("bytes given"), std::string::npos);
  EXPECT_NE(error_of([&] { write_gguf(path("x"), m, {gguf_tensor(std::string(64, 'n'), DType::F32, {33}, as_span(f))}); })
                .find("names must be"),
            std::string::npos);
  m.alignment = 64;  // without general.alignment
  EXPECT_NE(error_of([&] { write_gguf(path("x"), m, {}); }).find("general.alignment"), std::string::npos);
  GgufMetadata mixed;
  mixed.set("k", GgufValue::array(GgufType::U8, {GgufValue::u32(1)}));
  EXPECT_NE(error_of([&] { write_gguf(path("x"), mixed, {}); }).find("array of u8 holds a u32"), std::string::npos);
}

// A small valid file for the damage tests: a few keys and three tensors.
std::string valid_file(const std::string& p) {
  GgufMetadata m = every_value_type();
  static const std::vector<float> f(64, 0.5f);
  write_gguf(p, m, {gguf_tensor("a", DType::F32, {4, 8}, {as_span(f).data(), 128}),
                    gguf_tensor("b", DType::F16, {64}, {as_span(f).data(), 128})});
  return test::read_bytes(p);
}

std::string open_error(const std::string& p, const std::string& bytes) {
  test::write_bytes(p, bytes);
  return error_of([&] { Checkpoint::open(p); });
}

TEST_F(GgufTest, DamagedHeadersGiveClearErrors) {
  const std::string p = path("bad.gguf");
  const std::string good = valid_file(p);
  auto patched = [&](size_t at, const std::string& with) { return good.substr(0, at) + with + good.substr(at + with.size()); };
  auto expect = [&](const std::string& bytes, const std::string& part) {
    const std::string e = open_error(p, bytes);
    EXPECT_NE(e.find(p), std::string::npos) << e;
    EXPECT_NE(e.find(part), std::string::npos) << e;
  };
  expect(patched(4, le32(1)), "version 1");
  expect(patched(4, le32(0x03000000)), "big-endian");
  expect(patched(4, le32(9)), "unsupported GGUF version 9");
  expect(patched(8, le64(1ull << 40)), "tensor count");
  expect(patched(16, le64(1ull << 40)), "metadata count");
  expect(good.substr(0, 30), "truncated");
  expect(good.substr(0, 300), "truncated file");
  expect(good.substr(0, good.size() - 10), "runs past the end of the file");
  // The first key ("a.u8") is followed by its value type: make it unknown.
  const size_t type_at = 24 + 8 + 4;
  expect(patched(type_at, le32(77)), "unknown value type 77");
  // a.bool's value byte: 2 is not a bool.
  const size_t bool_at = good.find("a.bool") + 6 + 4;
  expect(patched(bool_at, std::string(1, '\x02')), "must be 0 or 1");
  // Tensor "b": type f16 -> q2_k (10), which Aviary does not read.
  const size_t b_info = good.find(gstr("b")) + 9;
  expect(patched(b_info + 4 + 8, le32(10)), "q2_k (10)");
  expect(patched(b_info, le32(5)), "5 dimensions");
  expect(patched(b_info + 4 + 8 + 4, le64(3)), "not a multiple of the alignment");
}

// Random byte flips and truncations of a valid file: each either opens or
// fails with an aviary::Error naming the file; nothing crashes or hangs
// (the sanitizer build checks every access).
TEST_F(GgufTest, FuzzedFilesNeverCrash) {
  const std::string p = path("fuzz.gguf");
  const std::string good = valid_file(p);
  std::mt19937 rng(12345);
  int errors = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bytes = good;
    if (i % 4 == 3) {
      bytes.resize(rng() % good.size());
    } else {
      const size_t header_end = good.size() - 256;  // mostly hit the header, not the tensor data
      for (int k = 0; k < 1 + int(rng() % 3); ++k) bytes[rng() % header_end] ^= char(1 + rng() % 255);
    }
    test::write_bytes(p, bytes);
    try {
      const Checkpoint ck = Checkpoint::open(p);
      for (const auto& t : ck.tensors()) ASSERT_LE(t.data + dtype_bytes(t.dtype, t.numel()), ck.file()->data() + bytes.size());
    } catch (const Error& e) {
      ++errors;
      ASSERT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 100);
}

}  // namespace
}  // namespace aviary
