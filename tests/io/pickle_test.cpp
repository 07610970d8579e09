// The pickle reader on hand-built pickles: strided views with a storage
// offset, the protocol-4 opcodes, and hostile input that must fail cleanly.
#include <gtest/gtest.h>

#include <random>

#include "io/checkpoint.h"
#include "io/pickle_reader.h"
#include "io_test_util.h"

namespace aviary::test {
namespace {

std::vector<PickledTensor> parse(const Pickle& p) {
  return read_torch_pickle(p.span(), "test.pkl");
}

// A dict {"w": <tensor>} around one tensor pickle.
Pickle one_tensor(const std::string& type, int64_t numel, int64_t offset,
                  const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  Pickle p;
  p.proto(2).op('}').str("w").tensor(type, "0", numel, offset, shape, strides).op('s').op('.');
  return p;
}

// A .pth of `pickle` and one storage record "s0" holding `storage`, under an
// arbitrary root folder and with a non-numeric storage key.
std::string write_hand_built(const TempDir& tmp, const Pickle& pickle,
                             const std::vector<float>& storage) {
  const std::string path = (tmp / "v.pth").string(), version = "3\n";
  write_torch_zip(
      path, {{"some.weird-root/data.pkl", pickle.span()},
             {"some.weird-root/data/s0",
              {reinterpret_cast<const uint8_t*>(storage.data()), 4 * storage.size()}},
             {"some.weird-root/version", {reinterpret_cast<const uint8_t*>(version.data()), 2}}});
  return path;
}

TEST(Pickle, TransposedViewWithStorageOffset) {
  TempDir tmp;
  std::vector<float> storage(10);
  for (size_t i = 0; i < storage.size(); ++i) storage[i] = float(i);
  Pickle p;
  p.proto(2).op('}').op('(');
  p.str("t").tensor("FloatStorage", "s0", 10, 2, {3, 2}, {1, 3});         // elements 2 + i + 3j
  p.str("row").tensor("FloatStorage", "s0", 10, 7, {3}, {1});             // same storage, a slice
  p.str("expanded").tensor("FloatStorage", "s0", 10, 4, {3, 2}, {0, 1});  // broadcast rows
  p.op('u').op('.');
  const Checkpoint ckpt = Checkpoint::open(write_hand_built(tmp, p, storage));
  const TensorView& t = ckpt.get("t");
  EXPECT_EQ(t.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t.strides, (std::vector<int64_t>{1, 3}));
  EXPECT_FALSE(t.is_contiguous());
  std::vector<float> got;
  for (int64_t i = 0; i < 6; ++i) got.push_back(t.at(i));
  EXPECT_EQ(got, (std::vector<float>{2, 5, 3, 6, 4, 7}));
  const TensorView& row = ckpt.get("row");
  EXPECT_EQ(row.at(0), 7.f);
  EXPECT_EQ(row.at(2), 9.f);  // the last element of the storage: still in bounds
  const TensorView& expanded = ckpt.get("expanded");
  EXPECT_EQ(expanded.at(4), 4.f);
  EXPECT_EQ(expanded.at(5), 5.f);
}

TEST(Pickle, ViewsOutsideTheirStorageAreRejected) {
  TempDir tmp;
  const std::vector<float> storage(10);
  auto open_with = [&](int64_t offset, std::vector<int64_t> shape, std::vector<int64_t> strides) {
    Pickle p;
    p.proto(2).op('}').str("w").tensor("FloatStorage", "s0", 10, offset, shape, strides);
    p.op('s').op('.');
    const std::string path = write_hand_built(tmp, p, storage);
    Checkpoint::open(path);
  };
  EXPECT_NO_THROW(open_with(10, {0}, {1}));  // an empty view may sit at the very end
  expect_error([&] { open_with(11, {0}, {1}); }, {"tensor 'w'", "needs 11 elements"});
  expect_error([&] { open_with(1, {3, 2}, {2, 5}); }, {"needs 11 elements", "out of bounds"});
  expect_error(
      [&] {
        open_with(0, {int64_t(1) << 61, 2}, {8, 1});
      },
      {"needs more than 2^63 elements"});
  expect_error(
      [&] {
        open_with(0, {int64_t(1) << 40, int64_t(1) << 40}, {0, 0});
      },
      {"tensor 'w'", "has more than 2^63 elements"});
}

TEST(Pickle, ProtocolFourOpcodesAndOrderedDictWithMetadata) {
  Pickle p;
  p.proto(4).op('\x95').raw(std::string("\x10\0\0\0\0\0\0\0", 8));  // FRAME: framing is transparent
  p.short_str("collections")
      .short_str("OrderedDict")
      .op('\x93')
      .op('\x94')
      .op(')')
      .op('R')
      .op('\x94');
  p.short_str("a").op('\x94');
  p.short_str("torch._utils").short_str("_rebuild_parameter").op('\x93');
  p.op('(').tensor("HalfStorage", "k", 4, 1, {3}, {1}).op('\x88').op('}').op('t').op('R');
  p.op('s');
  p.op('}').short_str("_metadata").op('h').raw(std::string(1, '\0')).op('s').op('b');  // BUILD:
                                                                                       // ignored
  p.op('.');
  const auto tensors = parse(p);
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].name, "a");
  EXPECT_EQ(tensors[0].storage.dtype, DType::F16);
  EXPECT_EQ(tensors[0].storage.key, "k");
  EXPECT_EQ(tensors[0].storage_offset, 1);
}

TEST(Pickle, LargeIntegersAndMemo) {
  Pickle p;
  p.proto(2).op('}').op('q').raw(std::string(1, '\0'));
  p.str("big").op('r').raw(std::string("\x05\x01\0\0", 4));  // LONG_BINPUT 261
  p.tensor("BFloat16Storage", "0", int64_t(1) << 33, (int64_t(1) << 33) - 2, {2}, {1});
  p.op('s').op('j').raw(std::string("\x05\x01\0\0", 4)).op('0').op('.');  // LONG_BINGET, POP
  const auto t = parse(p);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].storage.numel, int64_t(1) << 33);
  EXPECT_EQ(t[0].storage_offset, (int64_t(1) << 33) - 2);
}

TEST(Pickle, RejectsWhatItDoesNotKnow) {
  expect_error([] { parse(Pickle().proto(2).raw("cos\nsystem\n").op('.')); },
               {"test.pkl", "forbidden global 'os.system'", "at byte 2"});
  expect_error([] { parse(Pickle().proto(2).raw("cbuiltins\neval\n").op('.')); },
               {"'builtins.eval'", "at byte 2"});
  expect_error([] { parse(Pickle().proto(2).op('i').op('.')); },
               {"unsupported pickle opcode INST (0x69)", "at byte 2"});
  expect_error([] { parse(Pickle().proto(2).op('\x81')); }, {"NEWOBJ (0x81)"});
  expect_error([] { parse(Pickle().proto(2).op('\xff')); }, {"unknown (0xff)", "at byte 2"});
  expect_error([] { parse(Pickle().proto(9)); }, {"unsupported pickle protocol 9"});
  expect_error([] { parse(one_tensor("DoubleStorage", 6, 0, {6}, {1})); },
               {"unsupported storage type 'torch.DoubleStorage'"});
  expect_error([] { parse(one_tensor("LongStorage", 6, 0, {6}, {1})); }, {"'torch.LongStorage'"});
  expect_error(
      [] {
        parse(one_tensor("FloatStorage", 6, 0, {6, 1}, {1}));
      },
      {"2 sizes but 1 strides"});
  expect_error([] { parse(one_tensor("FloatStorage", 6, -1, {6}, {1})); },
               {"negative storage offset"});
  expect_error([] { parse(Pickle().proto(2).op(']').op('.')); }, {"top-level object is a list"});
  expect_error([] { parse(Pickle().proto(2).op('}').str("x").integer(3).op('s').op('.')); },
               {"entry 'x' is a int, not a tensor"});
  expect_error([] { parse(Pickle().proto(2).op('h').raw(std::string(1, '\7'))); },
               {"memo index 7 was never stored"});
  expect_error([] { parse(Pickle().proto(2).op('s')); }, {"SETITEM on an empty stack"});
  expect_error([] { parse(Pickle().proto(2).op('u')); }, {"SETITEMS without a MARK"});
  expect_error([] { parse(Pickle().proto(2).raw("ctorch._utils\n_rebuild_tensor_v2\n)R.")); },
               {"takes 6 or 7 arguments"});
  expect_error([] { parse(Pickle().proto(2).str("a").op(')').op('R')); }, {"REDUCE on a str"});
}

TEST(Pickle, HostileLengthsAndTruncationFailCleanly) {
  // Length fields far beyond the data: an error, never a huge allocation.
  expect_error([] { parse(Pickle().proto(2).raw("X\xf0\xff\xff\xff")); },
               {"truncated pickle", "4294967280 bytes"});
  expect_error([] { parse(Pickle().proto(4).raw("\x8d\xff\xff\xff\xff\xff\xff\xff\x7f")); },
               {"truncated pickle"});
  expect_error([] { parse(Pickle().proto(4).raw("\x95\xff\xff\xff\xff\xff\xff\xff\xff")); },
               {"FRAME longer"});
  expect_error([] { parse(Pickle().proto(2).raw("\x8a\x09")); }, {"LONG1 integer of 9 bytes"});
  expect_error([] { parse(Pickle().proto(2).raw("cos\nsys")); }, {"unterminated GLOBAL"});
  // A list that contains itself, and deep nesting: no leak, no recursion.
  expect_error(
      [] {
        parse(Pickle()
                  .proto(2)
                  .op(']')
                  .op('q')
                  .raw(std::string(1, '\0'))
                  .op('h')
                  .raw(std::string(1, '\0'))
                  .op('a')
                  .op('.'));
      },
      {"top-level object is a list"});
  Pickle deep;
  deep.proto(2);
  for (int i = 0; i < 200000; ++i) deep.op(']');
  for (int i = 0; i < 199999; ++i) deep.op('a');
  deep.op('.');
  expect_error([&] { parse(deep); }, {"top-level object is a list"});

  // Every prefix of a real pickle fails with an error.
  auto records = read_records(small_pth());
  const std::string full = find_record(records, "/data.pkl").bytes;
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string part = full.substr(0, n);
    EXPECT_THROW(read_torch_pickle({reinterpret_cast<const uint8_t*>(part.data()), n}, "p"), Error)
        << n;
  }
}

TEST(Pickle, RandomByteFlipsNeverCrash) {
  auto records = read_records(small_pth());
  const std::string full = find_record(records, "/data.pkl").bytes;
  std::mt19937 rng(1234);
  int errors = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = full;
    for (int k = 0; k < 1 + trial % 4; ++k) damaged[rng() % damaged.size()] = char(rng());
    try {
      read_torch_pickle({reinterpret_cast<const uint8_t*>(damaged.data()), damaged.size()}, "p");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 1000);
}

}  // namespace
}  // namespace aviary::test
