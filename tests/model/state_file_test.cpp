// Aviary state files: exact round trips on every reference model, refusal of
// states from another model, damage detection and atomic saves.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>

#include <cstring>
#include <functional>

#include "common/test_util.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "io/le_bytes.h"
#include "io/zip_reader.h"
#include "model/model.h"
#include "model/state_file.h"
#include "util/error.h"

namespace aviary {
namespace {

using test::case_tokens;
using test::error_of;

namespace fs = std::filesystem;

const std::string kFp32 = "v7_tiny_L2_C128_V1000_fp32", kBf16 = "v7_tiny_L2_C128_V1000_bf16";

std::vector<float> floats(const State& s) { return {s.raw().begin(), s.raw().end()}; }

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

// The state a model is left in by the first half of its case's tokens.
struct Prefixed {
  std::unique_ptr<Model> model;
  std::vector<int32_t> tokens;
  size_t prefix = 0;
  State state;
};

Prefixed run_prefix(const std::string& name) {
  auto model = load_model(test::case_model_path(name));
  auto tokens = case_tokens(name);
  const size_t P = tokens.size() / 2;
  State state = model->new_state();
  std::vector<float> logits;
  model->forward({tokens.data(), P}, state, logits);
  return {std::move(model), std::move(tokens), P, std::move(state)};
}

class StateFileRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(StateFileRoundTrip, SaveLoadContinueIsBitwiseTheSameAsNeverStopping) {
  Prefixed p = run_prefix(GetParam());
  test::TempDir tmp;
  const auto path = (tmp / "prefix.avst").string();
  StateExtras extras;
  extras.token_count = int64_t(p.prefix);
  extras.tokens.assign(p.tokens.begin(), p.tokens.begin() + std::ptrdiff_t(p.prefix));
  extras.text = "caf\xc3\xa9\n\xff (any bytes)";
  save_state_file(path, *p.model, p.state, extras);

  StateExtras back;
  State loaded = load_state_file(path, *p.model, {}, &back);
  EXPECT_EQ(floats(loaded), floats(p.state));
  EXPECT_EQ(back.token_count, extras.token_count);
  EXPECT_EQ(back.tokens, extras.tokens);
  EXPECT_EQ(back.text, extras.text);

  const std::span<const int32_t> rest(p.tokens.data() + p.prefix, p.tokens.size() - p.prefix);
  std::vector<float> never_stopped, resumed;
  p.model->forward(rest, p.state, never_stopped, true);
  p.model->forward(rest, loaded, resumed, true);
  EXPECT_EQ(resumed, never_stopped);
  EXPECT_EQ(floats(loaded), floats(p.state));
}

INSTANTIATE_TEST_SUITE_P(AllCases, StateFileRoundTrip, ::testing::ValuesIn(test::refdata_cases()),
                         [](const auto& info) { return info.param; });

TEST(StateFile, InfoDescribesTheHeaderWithoutAModel) {
  Prefixed p = run_prefix(kFp32);
  test::TempDir tmp;
  const auto path = (tmp / "s.avst").string();
  save_state_file(path, *p.model, p.state, {7, {1, 2, 3}, "abc"});
  const StateFileInfo i = read_state_file_info(path);
  EXPECT_EQ(i.format_version, kStateFormatVersion);
  EXPECT_EQ(i.file_size, fs::file_size(path));
  EXPECT_EQ(i.arch_generation, 7);
  EXPECT_EQ(i.version, "x070");
  EXPECT_EQ(i.n_layer, 2);
  EXPECT_EQ(i.n_embd, 128);
  EXPECT_EQ(i.n_head, 2);
  EXPECT_EQ(i.head_size, 64);
  EXPECT_EQ(i.vocab_size, 1000);
  EXPECT_EQ(i.dtype, "f32");
  EXPECT_EQ(i.n_floats, p.state.raw().size());
  EXPECT_EQ(i.fingerprint, model_fingerprint(*p.model));
  ASSERT_EQ(i.tensors.size(), p.state.num_tensors());
  for (size_t k = 0; k < i.tensors.size(); ++k) {
    EXPECT_EQ(i.tensors[k].name, p.state.layout()[k].name);
    EXPECT_EQ(i.tensors[k].shape, p.state.layout()[k].shape);
  }
  EXPECT_EQ(i.extras.token_count, 7);
  EXPECT_EQ(i.extras.tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(i.extras.text, "abc");
  // Header + table, padded to 64, then data, 3 tokens, 3 text bytes and the CRC.
  EXPECT_EQ(i.file_size % 64, (p.state.raw().size() * 4 + 12 + 3 + 4) % 64);
}

TEST(StateFile, FingerprintIsStableAcrossFormatsAndKeyOrder) {
  const auto fp32 = load_model(test::case_model_path(kFp32));
  const std::string fp = model_fingerprint(*fp32);
  EXPECT_EQ(fp.size(), 16u);
  EXPECT_EQ(model_fingerprint(*load_model(test::case_model_path(kFp32))), fp);
  EXPECT_NE(model_fingerprint(*load_model(test::case_model_path(kBf16))), fp);

  std::vector<TensorData> tensors;
  for (const auto& t : fp32->checkpoint().tensors()) tensors.push_back(tensor_data(t));
  std::reverse(tensors.begin(), tensors.end());
  test::TempDir tmp;
  write_safetensors((tmp / "m.safetensors").string(), tensors);
  EXPECT_EQ(model_fingerprint(*load_model((tmp / "m.safetensors").string())), fp);

  // One changed value in a sampled window is another model.
  const TensorView& head = fp32->checkpoint().get("head.weight");
  std::vector<uint8_t> edited(head.data, head.data + head.nbytes());
  edited[head.nbytes() / 2] ^= 1;
  for (auto& t : tensors)
    if (t.name == "head.weight") t.bytes = edited;
  write_pth((tmp / "edited.pth").string(), tensors);
  EXPECT_NE(model_fingerprint(*load_model((tmp / "edited.pth").string())), fp);
}

TEST(StateFile, OtherDimensionsAreRefusedNamingExpectedAndFound) {
  Prefixed world = run_prefix("v7_world_L2_C64_V65536_bf16");
  test::TempDir tmp;
  const auto path = (tmp / "world.avst").string();
  save_state_file(path, *world.model, world.state);
  const auto tiny = load_model(test::case_model_path(kFp32));
  const std::string msg = error_of([&] { load_state_file(path, *tiny); });
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, test::case_model_path(kFp32));
  EXPECT_HAS(msg, "n_embd: expected 128, found 64");
  EXPECT_HAS(msg, "n_head: expected 2, found 1");
  EXPECT_HAS(msg, "vocab_size: expected 1000, found 65536");
  // Other dimensions are never accepted, whatever the options.
  EXPECT_HAS(error_of([&] { load_state_file(path, *tiny, {.allow_other_weights = true}); }), "n_embd");
}

TEST(StateFile, OtherArchitectureIsRefused) {
  Prefixed v6 = run_prefix("v6_tiny_L2_C128_V1000_fp32");
  test::TempDir tmp;
  const auto path = (tmp / "v6.avst").string();
  save_state_file(path, *v6.model, v6.state);
  const auto v7 = load_model(test::case_model_path(kFp32));
  const std::string msg = error_of([&] { load_state_file(path, *v7, {.allow_other_weights = true}); });
  EXPECT_HAS(msg, "architecture: expected RWKV-7 (x070), found RWKV-6 (x060)");
}

TEST(StateFile, OtherWeightsOfTheSameShapeNeedTheFlag) {
  Prefixed p = run_prefix(kFp32);
  test::TempDir tmp;
  const auto path = (tmp / "fp32.avst").string();
  save_state_file(path, *p.model, p.state);
  const auto bf16 = load_model(test::case_model_path(kBf16));
  const std::string msg = error_of([&] { load_state_file(path, *bf16); });
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "other weights");
  EXPECT_HAS(msg, model_fingerprint(*bf16));
  EXPECT_HAS(msg, model_fingerprint(*p.model));
  EXPECT_HAS(msg, "--allow-other-weights");
  EXPECT_EQ(floats(load_state_file(path, *bf16, {.allow_other_weights = true})), floats(p.state));
}

TEST(StateFile, SavingAStateOfAnotherModelIsRefused) {
  // (A State does not know its model: only its layout can be checked.)
  Prefixed v4 = run_prefix("v4_tiny_L2_C128_V1000_fp32");
  const auto v7 = load_model(test::case_model_path(kFp32));
  test::TempDir tmp;
  const auto path = (tmp / "x.avst").string();
  EXPECT_HAS(error_of([&] { save_state_file(path, *v7, v4.state); }), "does not have the layout");
  EXPECT_FALSE(fs::exists(path));
}

// A saved file's bytes, for damaging.
struct SavedFile {
  test::TempDir tmp;
  std::string path = (tmp / "s.avst").string();
  std::string bytes;
  std::unique_ptr<Model> model;

  SavedFile() {
    Prefixed p = run_prefix(kFp32);
    save_state_file(path, *p.model, p.state, {24, {5, 6}, "some text"});
    bytes = test::read_bytes(path);
    model = std::move(p.model);
  }
  std::string load_error(const std::string& content) {
    test::write_bytes(path, content);
    return error_of([&] { load_state_file(path, *model); });
  }
  // Stores `value` at `offset` and fixes the CRC, as a hostile file would.
  std::string with_u64(size_t offset, uint64_t value) const {
    std::string b = bytes;
    std::string v;
    append_le64(v, value);
    b.replace(offset, 8, v);
    return with_fixed_crc(b);
  }
  static std::string with_fixed_crc(std::string b) {
    std::string crc;
    append_le32(crc, crc32_of(reinterpret_cast<const uint8_t*>(b.data()), b.size() - 4));
    return b.replace(b.size() - 4, 4, crc);
  }
};

TEST(StateFileDamage, TruncatedFilesAreRefused) {
  SavedFile f;
  EXPECT_HAS(f.load_error(""), "empty file");
  for (size_t keep : {size_t(5), size_t(100), f.bytes.size() / 2, f.bytes.size() - 1}) {
    const std::string msg = f.load_error(f.bytes.substr(0, keep));
    EXPECT_HAS(msg, f.path);
    EXPECT_HAS(msg, "truncated");
  }
  EXPECT_HAS(f.load_error(f.bytes + "x"), "truncated or damaged: its header records");
}

TEST(StateFileDamage, AFlippedByteAnywhereFailsTheChecksum) {
  SavedFile f;
  // A header field, the tensor table, the tensor data, a token, the text, the CRC itself.
  for (size_t at : {size_t(97), size_t(150), size_t(1000), f.bytes.size() - 20, f.bytes.size() - 6,
                    f.bytes.size() - 1}) {
    std::string b = f.bytes;
    b[at] = char(b[at] ^ 0x10);
    const std::string msg = f.load_error(b);
    EXPECT_HAS(msg, "CRC-32 mismatch") << " byte " << at;
  }
}

TEST(StateFileDamage, WrongMagicAndFutureVersionAreRefused) {
  SavedFile f;
  std::string b = f.bytes;
  b[0] = 'X';
  EXPECT_HAS(f.load_error(b), "not an Aviary state file");
  EXPECT_HAS(f.load_error("PK\x03\x04 something else entirely"), "not an Aviary state file");
  b = f.bytes;
  b[8] = 2;  // format version 2, with a valid checksum
  EXPECT_HAS(f.load_error(SavedFile::with_fixed_crc(b)), "format version 2 is newer than this Aviary reads (1)");
  b[8] = 0;
  EXPECT_HAS(f.load_error(SavedFile::with_fixed_crc(b)), "format version 0 is invalid");
}

TEST(StateFileDamage, HugeLengthFieldsAreRefusedWithoutAllocating) {
  SavedFile f;
  const uint64_t huge = uint64_t(1) << 62;
  for (size_t offset : {size_t(88), size_t(96), size_t(120), size_t(128), size_t(24)}) {
    const std::string msg = f.load_error(f.with_u64(offset, huge));
    EXPECT_HAS(msg, "damaged state file") << " field at " << offset;
  }
  // A tensor name length of 4 GiB in the table.
  std::string b = f.bytes;
  b.replace(144, 4, std::string(4, '\xff'));
  EXPECT_HAS(f.load_error(SavedFile::with_fixed_crc(b)), "damaged state file");
  // A dimension that overflows when multiplied out.
  b = f.bytes;
  const size_t first_dim = 144 + 4 + std::strlen("blocks.0.att.x_prev") + 4;
  b.replace(first_dim, 8, std::string(8, '\x7f'));
  EXPECT_HAS(f.load_error(SavedFile::with_fixed_crc(b)), "is too large");
}

TEST(StateBytes, InMemoryRoundTripIsTheFileFormatByteForByte) {
  SavedFile f;
  Prefixed p = run_prefix(kFp32);
  const StateExtras extras{24, {5, 6}, "some text"};
  const std::string bytes = serialize_state_file(*p.model, p.state, extras);
  EXPECT_EQ(bytes, f.bytes);  // the same state and extras as SavedFile's
  StateExtras back;
  const State loaded = parse_state_file(bytes, *p.model, "cache entry k", {}, &back);
  EXPECT_EQ(floats(loaded), floats(p.state));
  EXPECT_EQ(back.token_count, 24);
  EXPECT_EQ(back.tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(back.text, "some text");
}

TEST(StateBytes, DamageIsDetectedAndNamesTheSource) {
  SavedFile f;
  auto error_for = [&](const std::string& bytes) {
    return error_of([&] { parse_state_file(bytes, *f.model, "cache entry k"); });
  };
  EXPECT_HAS(error_for(""), "cache entry k: empty");
  EXPECT_HAS(error_for(f.bytes.substr(0, f.bytes.size() / 2)), "truncated");
  std::string flipped = f.bytes;
  flipped[1000] = char(flipped[1000] ^ 1);
  EXPECT_HAS(error_for(flipped), "CRC-32 mismatch");
  EXPECT_HAS(error_for(f.with_u64(96, uint64_t(1) << 62)), "damaged state file");
  EXPECT_HAS(error_for("not a state at all"), "not an Aviary state file");
}

TEST(StateBytes, AStateOfOtherWeightsOrAnotherModelIsRefused) {
  SavedFile f;
  const auto bf16 = load_model(test::case_model_path(kBf16));
  EXPECT_HAS(error_of([&] { parse_state_file(f.bytes, *bf16, "k"); }), "other weights");
  const auto v4 = load_model(test::case_model_path("v4_tiny_L2_C128_V1000_fp32"));
  EXPECT_HAS(error_of([&] { parse_state_file(f.bytes, *v4, "k"); }), "another model");
  EXPECT_HAS(error_of([&] { serialize_state_file(*v4, f.model->new_state()); }), "does not have the layout");
}

// Lowers the file-size limit so that writes past `bytes` fail with EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    handler_ = signal(SIGXFSZ, SIG_IGN);  // fail the write instead of killing us
    rlimit r = old_;
    r.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &r) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t handler_;
  bool ok_ = false;
};

TEST(StateFileAtomic, AFailureMidWriteLeavesTheOldFileIntact) {
  Prefixed p = run_prefix(kFp32);
  test::TempDir tmp;
  const auto path = (tmp / "s.avst").string();
  save_state_file(path, *p.model, p.state, {1, {}, "old"});
  const std::string before = test::read_bytes(path);
  std::vector<float> logits;
  p.model->forward(std::vector<int32_t>{1, 2}, p.state, logits);
  std::string msg;
  {
    FileSizeLimit limit(4096);  // the state is ~66 KiB: the header fits, the data does not
    if (!limit.ok()) GTEST_SKIP() << "cannot lower RLIMIT_FSIZE";
    msg = error_of([&] { save_state_file(path, *p.model, p.state, {3, {}, "new"}); });
  }
  EXPECT_HAS(msg, path);
  EXPECT_HAS(msg, "write failed");
  EXPECT_EQ(test::read_bytes(path), before);
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path())) ++files;
  EXPECT_EQ(files, 1u) << "the temporary file was left behind";
  EXPECT_EQ(read_state_file_info(path).extras.text, "old");
}

TEST(StateFileAtomic, AMissingDirectoryIsAClearError) {
  Prefixed p = run_prefix(kFp32);
  test::TempDir tmp;
  const auto path = (tmp / "gone" / "s.avst").string();
  EXPECT_HAS(error_of([&] { save_state_file(path, *p.model, p.state); }), "cannot create");
  EXPECT_FALSE(fs::exists(tmp / "gone"));
}

}  // namespace
}  // namespace aviary
