// The safetensors reader on hand-written files, good and bad.
#include <gtest/gtest.h>

#include "io/checkpoint.h"
#include "io/le_bytes.h"
#include "io_test_util.h"

namespace aviary::test {
namespace {

class Safetensors : public ::testing::Test {
 protected:
  TempDir tmp_;
  const std::filesystem::path path_ = tmp_ / "m.safetensors";

  void write(const std::string& header, const std::string& data) {
    std::string b;
    append_le64(b, header.size());
    write_bytes(path_, b + header + data);
  }
};

TEST_F(Safetensors, ReadsInDataOrderWithMetadata) {
  write(R"({"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
        R"("__metadata__":{"format":"pt"},)"
        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("c":{"dtype":"BF16","shape":[1,0],"data_offsets":[12,12]}})",
        std::string("\0\0\x80?\0\0\0@\0<\0\xc0", 12));
  const Checkpoint ckpt = Checkpoint::open(path_.string());
  ASSERT_EQ(ckpt.tensors().size(), 3u);
  EXPECT_EQ(ckpt.tensors()[0].name, "a");
  EXPECT_EQ(ckpt.tensors()[1].name, "b");
  EXPECT_EQ(ckpt.tensors()[2].name, "c");
  EXPECT_EQ(ckpt.get("a").at(1), 2.f);
  EXPECT_EQ(ckpt.get("b").at(0), 1.f);
  EXPECT_EQ(ckpt.get("b").at(1), -2.f);
  EXPECT_EQ(ckpt.get("c").numel(), 0);
  EXPECT_EQ(ckpt.metadata().at("format"), "pt");
}

TEST_F(Safetensors, Errors) {
  const std::string data(16, '\0');
  write(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", data);
  expect_open_error(path_, {"tensor 'w'", "unsupported dtype F64 (supported: F32, F16, BF16)"});
  write(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data);
  expect_open_error(path_, {"tensor 'w'", "unsupported dtype I64"});
  write(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,24]}})", data);
  expect_open_error(path_,
                    {"tensor 'w'", "data_offsets [0, 24] lie outside the 16-byte data buffer"});
  write(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data);
  expect_open_error(path_, {"tensor 'w'", "span 8 bytes, expected 3 x 4 for shape [3] F32"});
  write(R"({"w":{"dtype":"F32","shape":[-3],"data_offsets":[0,8]}})", data);
  expect_open_error(path_, {"tensor 'w'", "shape entry must be a non-negative integer"});
  write(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data);
  expect_open_error(path_, {"tensor 'w'", "too many elements"});
  write(R"({"w":{"dtype":"F32","shape":[2]}})", data);
  expect_open_error(path_, {"tensor 'w'", "needs \"dtype\", \"shape\" and two \"data_offsets\""});
  write(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", data);
  expect_open_error(path_, {"safetensors header is not valid JSON"});
  write(R"({"__metadata__":{"n":3}})", data);
  expect_open_error(path_, {"__metadata__ value of 'n' is not a string"});
  write(R"({"w":[1]})", "");
  expect_open_error(path_, {"tensor 'w'"});
}

TEST_F(Safetensors, HostileHeaderLength) {
  std::string b;
  append_le64(b, 0xffffffffffffull);
  write_bytes(path_, b + "{}");
  expect_open_error(path_,
                    {"safetensors header length 281474976710655 exceeds the 2 bytes after it"});
}

TEST_F(Safetensors, TruncatedData) {
  write(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(16, '\0'));
  const std::string full = read_bytes(path_);
  write_bytes(path_, full.substr(0, full.size() - 1));
  expect_open_error(path_, {"tensor 'w'", "lie outside the 15-byte data buffer"});
  write_bytes(path_, full.substr(0, 30));  // inside the header
  expect_open_error(
      path_, {"safetensors header length", "exceeds the 22 bytes after it (file truncated?)"});
  write_bytes(path_, full.substr(0, 6));  // inside the length
  expect_open_error(path_, {"not a PyTorch .pth (ZIP) or .safetensors file"});
}

}  // namespace
}  // namespace aviary::test
