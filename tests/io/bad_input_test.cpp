// Damaged copies of a real refdata checkpoint: every one must fail with an
// aviary::Error naming the file and the problem, never crash or hang.
#include <gtest/gtest.h>

#include <random>

#include "io/checkpoint.h"
#include "io/le_bytes.h"
#include "io_test_util.h"

namespace aviary::test {
namespace {

class BadInput : public ::testing::Test {
 protected:
  TempDir tmp_;
  const std::filesystem::path bad_ = tmp_ / "bad.pth";
  const std::string original_ = read_bytes(small_pth());

  // Offsets in the original file, from its end records (it has no comment).
  size_t end_record() const { return original_.size() - 22; }
  size_t directory() const { return load_le32(u8(original_) + end_record() + 16); }
  static const uint8_t* u8(const std::string& s) {
    return reinterpret_cast<const uint8_t*>(s.data());
  }

  void write_patched(size_t offset, const std::string& bytes) {
    std::string b = original_;
    b.replace(offset, bytes.size(), bytes);
    write_bytes(bad_, b);
  }
  // Rewrites the archive (valid ZIP, valid CRCs) with a changed data.pkl.
  void write_with_pickle(const std::string& pickle) {
    auto records = read_records(small_pth());
    find_record(records, "/data.pkl").bytes = pickle;
    write_records(bad_, records);
  }
  std::string pickle() const {
    auto records = read_records(small_pth());
    return find_record(records, "/data.pkl").bytes;
  }
  std::string le16(uint16_t v) {
    std::string s;
    append_le16(s, v);
    return s;
  }
  std::string le32(uint32_t v) {
    std::string s;
    append_le32(s, v);
    return s;
  }
};

TEST_F(BadInput, OriginalOpens) { EXPECT_NO_THROW(Checkpoint::open(small_pth().string())); }

TEST_F(BadInput, EmptyFile) {
  write_bytes(bad_, "");
  expect_open_error(bad_, {"empty file", "not a PyTorch .pth (ZIP) or .safetensors file"});
}

TEST_F(BadInput, NotACheckpoint) {
  write_bytes(bad_, "just some text, long enough to look at\n");
  expect_open_error(bad_, {"not a PyTorch .pth (ZIP) or .safetensors file"});
  write_bytes(bad_, std::string("PK\x05\x06", 4) + std::string(18, '\0'));  // an empty ZIP
  expect_open_error(bad_, {"not a PyTorch .pth (ZIP) or .safetensors file"});
  expect_open_error(tmp_ / "missing.pth", {"cannot open"});
}

TEST_F(BadInput, Truncated) {
  for (size_t size :
       {size_t(3), size_t(10), size_t(100), original_.size() / 2, original_.size() - 1}) {
    SCOPED_TRACE(size);
    write_bytes(bad_, original_.substr(0, size));
    const std::string msg = expect_open_error(bad_, {});
    EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                msg.find("not a PyTorch") != std::string::npos)
        << msg;
  }
  write_bytes(bad_, original_.substr(0, original_.size() / 2));
  expect_open_error(bad_, {"end-of-central-directory record not found (file truncated?)"});
}

TEST_F(BadInput, FlippedByteInDataPkl) {
  const size_t at = original_.find("emb.weight");  // inside data.pkl, the first record
  write_patched(at, "emb.weighT");
  expect_open_error(bad_,
                    {"CRC-32 mismatch in entry 'model/data.pkl'", "recorded 0x", "computed 0x"});
}

TEST_F(BadInput, FlippedByteInTensorDataIsFoundByVerify) {
  const size_t data0 = original_.find("model/data/0") + 12 + 4;  // name, then an empty "FB" field
  write_patched(data0 + 1000, "\x55\xaa");
  const Checkpoint ckpt = Checkpoint::open(bad_.string());  // not checked at open: too slow for GBs
  expect_error([&] { ckpt.verify_checksums(); },
               {bad_.string(), "CRC-32 mismatch in entry 'model/data/0'"});
}

TEST_F(BadInput, CorruptedCentralDirectory) {
  write_patched(directory(), "PX");
  expect_open_error(bad_,
                    {"bad central directory signature at offset " + std::to_string(directory())});
  write_patched(directory() + 46, "M");  // first letter of the first record's name
  expect_open_error(bad_,
                    {"local header name does not match central directory entry 'Model/data.pkl'"});
  write_patched(directory() + 42, le32(7));  // local header offset
  expect_open_error(bad_, {"bad local header signature for entry 'model/data.pkl' at offset 7"});
  write_patched(directory() + 24, le32(0x7fffffff));  // uncompressed size of data.pkl
  expect_open_error(bad_, {"entry 'model/data.pkl' is stored but its sizes differ"});
  write_patched(directory() + 20, le32(0x7fffffff) + le32(0x7fffffff));
  expect_open_error(bad_, {"data of entry 'model/data.pkl'", "lies outside the archive"});
  write_patched(directory() + 8, le16(1));  // encrypted flag
  expect_open_error(bad_, {"entry 'model/data.pkl' is encrypted"});
}

TEST_F(BadInput, CorruptedEndRecords) {
  const size_t zip64_end = end_record() - 20 - 56;
  write_patched(zip64_end, "XX");
  expect_open_error(bad_, {"bad ZIP64 end-of-central-directory signature"});
  write_patched(zip64_end + 32, le32(0xfffffff0) + le32(0));  // entry count
  expect_open_error(bad_, {"central directory claims 4294967280 entries"});
  write_patched(zip64_end + 48, le32(0xfffffff0) + le32(0x7fffffff));  // directory offset
  expect_open_error(bad_, {"central directory (offset", "lies outside the archive"});
  write_patched(end_record() - 20 + 8, le32(0xfffffff0));  // locator -> ZIP64 end record
  expect_open_error(bad_,
                    {"ZIP64 end-of-central-directory record at offset 4294967280", "lies outside"});
}

TEST_F(BadInput, DeflatedEntry) {
  write_patched(directory() + 10, le16(8));  // method in the central directory
  expect_open_error(bad_,
                    {"entry 'model/data.pkl' is compressed (method 8, deflate)", "only stored"});
  write_patched(8, le16(8));  // method in the local header only
  expect_open_error(bad_, {"entry 'model/data.pkl' is compressed (method 8, deflate)"});
}

TEST_F(BadInput, UnknownStorageType) {
  write_with_pickle(replace_once(pickle(), "torch\nBFloat16Storage\n", "torch\nDoubleStorage\n"));
  expect_open_error(
      bad_, {"model/data.pkl", "unsupported storage type 'torch.DoubleStorage'", "at byte 74"});
  write_with_pickle(replace_once(pickle(), "torch\nBFloat16Storage\n", "torch\nLongStorage\n"));
  expect_open_error(bad_, {"unsupported storage type 'torch.LongStorage'"});
}

TEST_F(BadInput, ForbiddenGlobal) {
  write_with_pickle(replace_once(pickle(), "collections\nOrderedDict\n", "os\nsystem\n"));
  expect_open_error(bad_, {"model/data.pkl", "forbidden global 'os.system'", "at byte 144"});
  write_with_pickle(
      replace_once(pickle(), "torch._utils\n_rebuild_tensor_v2\n", "builtins\nexec\n"));
  expect_open_error(bad_, {"forbidden global 'builtins.exec'", "at byte 23"});
}

TEST_F(BadInput, ForbiddenOpcode) {
  std::string p = pickle();
  p.insert(2, "i");  // INST, which would instantiate an arbitrary class
  write_with_pickle(p);
  expect_open_error(bad_, {"model/data.pkl", "unsupported pickle opcode INST (0x69) at byte 2"});
  write_with_pickle(replace_once(pickle(), "R", "\x81"));  // first REDUCE -> NEWOBJ
  expect_open_error(bad_, {"unsupported pickle opcode NEWOBJ (0x81) at byte 172"});
}

TEST_F(BadInput, TensorOutOfBounds) {
  // emb.weight is [1000, 128] over 128000 elements; make it [1001, 128].
  write_with_pickle(replace_once(pickle(), "M\xe8\x03K\x80\x86", "M\xe9\x03K\x80\x86"));
  expect_open_error(
      bad_, {"tensor 'emb.weight' (shape [1001, 128], strides [128, 1], offset 0)",
             "needs 128128 elements but its storage 'model/data/0' holds 128000", "out of bounds"});
  // ... or give it a storage offset of 1.
  write_with_pickle(
      replace_once(pickle(), std::string("QK\0M\xe8\x03", 6), std::string("QK\1M\xe8\x03", 6)));
  expect_open_error(bad_,
                    {"tensor 'emb.weight'", "offset 1) needs 128001 elements", "out of bounds"});
  // ... or a stride that walks off the end.
  write_with_pickle(replace_once(pickle(), "K\x80K\x01\x86", "K\x81K\x01\x86"));
  expect_open_error(bad_, {"tensor 'emb.weight'", "strides [129, 1]", "out of bounds"});
}

TEST_F(BadInput, StorageSizeMismatch) {
  write_with_pickle(
      replace_once(pickle(), std::string("J\0\xf4\1\0", 5), std::string("J\1\xf4\1\0", 5)));
  expect_open_error(bad_,
                    {"tensor 'emb.weight'", "storage record 'model/data/0' holds 256000 bytes",
                     "expected 128001 x 2 bytes (torch.BFloat16Storage)"});
}

TEST_F(BadInput, MissingRecords) {
  auto records = read_records(small_pth());
  auto without = [&](const std::string& suffix) {
    std::vector<OwnedRecord> r;
    for (const auto& x : records)
      if (x.name != "model" + suffix) r.push_back(x);
    write_records(bad_, r);
  };
  without("/data/0");
  expect_open_error(bad_, {"tensor 'emb.weight': storage record 'model/data/0' is missing"});
  without("/data.pkl");
  expect_open_error(bad_, {"no <folder>/data.pkl record; not a torch.save checkpoint"});
}

TEST_F(BadInput,
       ByteOrderRecords) {  // torch >= 2 adds these; only little-endian is usable in place
  auto records = read_records(small_pth());
  records.push_back({"model/byteorder", "little"});
  records.push_back({"model/.data/serialization_id", "1234567890"});
  write_records(bad_, records);
  EXPECT_EQ(Checkpoint::open(bad_.string()).tensors().size(), 42u);
  records[records.size() - 2].bytes = "big";
  write_records(bad_, records);
  expect_open_error(bad_, {"byteorder record says 'big'", "only little-endian"});
}

TEST_F(BadInput, RandomDamageToTheDirectoryNeverCrashes) {
  std::mt19937 rng(99);
  const size_t tail = original_.size() - directory();
  int errors = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string b = original_;
    for (int k = 0; k < 1 + trial % 3; ++k) b[directory() + rng() % tail] = char(rng());
    write_bytes(bad_, b);
    try {
      Checkpoint::open(bad_.string());
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad_.string()), std::string::npos) << e.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);
}

}  // namespace
}  // namespace aviary::test
