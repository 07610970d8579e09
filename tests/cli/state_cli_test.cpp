// `aviary state` and the --state flags of forward and generate, end to end.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "io/checkpoint_writer.h"

namespace aviary {
namespace {

using test::run_cli;
namespace fs = std::filesystem;

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

const std::string kWorld = "v7_world_L2_C64_V65536_bf16", kTiny = "v7_tiny_L2_C128_V1000_fp32";

std::string vocab() { return (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string(); }

class StateCli : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return (tmp_ / name).string(); }

  // Saves the state after `prompt` with the World model.
  std::string save(const std::string& prompt, const std::string& name = "s.avst") {
    const auto r = run_cli({"state", "save", "-m", test::case_model_path(kWorld), "--vocab", vocab(), "-p", prompt, "-o", path(name)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path(name);
  }
  // Runs forward on the World model and returns the logits file's bytes.
  std::string forward(const std::vector<std::string>& state_args) {
    std::vector<std::string> args = {"forward", "-m", test::case_model_path(kWorld), "--tokens", "510,3158", "--logits-out",
                                     path("logits")};
    args.insert(args.end(), state_args.begin(), state_args.end());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::read_bytes(path("logits"));
  }

  test::TempDir tmp_;
};

TEST_F(StateCli, SaveThenInfoShowsModelTokensAndText) {
  const std::string prompt = "The capital of France is\nParis";
  const std::string file = save(prompt);
  const auto tok = run_cli({"tokenize", "--vocab", vocab(), "--json", prompt});
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  const auto ids = nlohmann::json::parse(tok.out)["ids"];

  const auto text = run_cli({"state", "info", file});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_HAS(text.out, "RWKV-7 (x070), 2 layers, n_embd 64, n_head 1, head_size 64, vocabulary 65536");
  EXPECT_HAS(text.out, std::to_string(ids.size()) + " seen");
  EXPECT_HAS(text.out, "\"The capital of France is\\nParis\"");

  const auto json = run_cli({"state", "info", "--json", file});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["architecture"], "RWKV-7");
  EXPECT_EQ(j["version"], "x070");
  EXPECT_EQ(j["n_layer"], 2);
  EXPECT_EQ(j["n_embd"], 64);
  EXPECT_EQ(j["vocab_size"], 65536);
  EXPECT_EQ(j["dtype"], "f32");
  EXPECT_EQ(j["n_tensors"], 6);
  EXPECT_EQ(j["state_floats"], 2 * (64 + 64 * 64 + 64));
  EXPECT_EQ(j["token_count"], ids.size());
  EXPECT_EQ(j["tokens"], ids);
  EXPECT_EQ(j["text"], prompt);
  EXPECT_EQ(j["file_size"], fs::file_size(file));
  EXPECT_EQ(j["weights_fingerprint"].get<std::string>().size(), 16u);
}

TEST_F(StateCli, ForwardFromAStateFileMatchesTheRawState) {
  const std::string file = save("Hello");
  const auto r = run_cli({"state", "convert", file, path("raw.f32"), "-m", test::case_model_path(kWorld), "--to", "raw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fs::file_size(path("raw.f32")), 2u * (64 + 64 * 64 + 64) * 4);
  const std::string from_file = forward({"--state", file});
  EXPECT_EQ(from_file, forward({"--state-in-f32", path("raw.f32")}));
  EXPECT_NE(from_file, forward({}));
}

TEST_F(StateCli, ConvertsTheOfficialRawStateBothWays) {
  const auto official = test::refdata_case(kWorld) / "state_prefix.bin";
  auto r = run_cli({"state", "convert", official.string(), path("a.avst"), "-m", test::case_model_path(kWorld), "--to", "aviary"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"state", "convert", path("a.avst"), path("back.f32"), "-m", test::case_model_path(kWorld), "--to", "raw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_bytes(path("back.f32")), test::read_bytes(official));
  EXPECT_EQ(forward({"--state", path("a.avst")}), forward({"--state-in-f32", official.string()}));
  const auto info = run_cli({"state", "info", path("a.avst")});
  EXPECT_HAS(info.out, "unknown seen, 0 stored");
}

TEST_F(StateCli, StateTuneFileThroughForwardAndConvert) {
  // One zero-filled-but-one time_state per layer, official names and shape.
  std::vector<float> m(2 * 64 * 64, 0.f);
  m[5] = 0.75f;
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(m.data()), m.size() * 4);
  write_pth(path("tune.pth"), {{"blocks.0.att.time_state", DType::F32, {2, 64, 64}, bytes},
                               {"blocks.1.att.time_state", DType::F32, {2, 64, 64}, bytes}});
  auto run_tiny = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"forward", "-m", test::case_model_path(kTiny), "--tokens", "1,2,3", "--logits-out",
                                     path("tl")};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::read_bytes(path("tl"));
  };
  const auto r = run_cli({"state", "convert", path("tune.pth"), path("tune.f32"), "-m", test::case_model_path(kTiny), "--to", "raw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto raw = test::read_floats(path("tune.f32"));
  ASSERT_EQ(raw.size(), 2u * (128 + 2 * 64 * 64 + 128));
  EXPECT_EQ(raw[128 + 5], 0.75f);  // v7: the official layout, not transposed
  const auto tuned = run_tiny({"--state", path("tune.pth")});
  EXPECT_EQ(tuned, run_tiny({"--state-in-f32", path("tune.f32")}));
  EXPECT_NE(tuned, run_tiny({}));
}

TEST_F(StateCli, GenerateStartsFromAState) {
  const std::string file = save("User: hi\n\nAssistant:");
  const auto r = run_cli({"generate", "-m", test::case_model_path(kWorld), "--vocab", vocab(), "--state", file, "-p", " ok",
                          "-n", "4", "--temperature", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A state of the tiny model is refused by the World model.
  const auto official = (test::refdata_case(kTiny) / "state_prefix.bin").string();
  ASSERT_EQ(run_cli({"state", "convert", official, path("tiny.avst"), "-m", test::case_model_path(kTiny), "--to", "aviary"})
                .exit_code,
            0);
  const auto other = run_cli({"generate", "-m", test::case_model_path(kWorld), "--vocab", vocab(), "--state", path("tiny.avst"),
                              "-p", "x"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_HAS(other.err, "n_embd: expected 64, found 128");
}

TEST_F(StateCli, ErrorsExitNonZeroWithAMessage) {
  const std::string file = save("Hello");
  // A state of another model.
  auto r = run_cli({"forward", "-m", test::case_model_path(kTiny), "--tokens", "1", "--logits-out", path("l"), "--state", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "aviary: error: " + file);
  EXPECT_HAS(r.err, "n_embd: expected 128, found 64");
  // Both kinds of initial state at once.
  r = run_cli({"forward", "-m", test::case_model_path(kWorld), "--tokens", "1", "--logits-out", path("l"), "--state", file,
               "--state-in-f32", path("x")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.err, "excludes");
  // Not a state file.
  r = run_cli({"state", "info", test::case_model_path(kWorld)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "not an Aviary state file");
  // A damaged one.
  std::string bytes = test::read_bytes(file);
  bytes[bytes.size() / 2] ^= 1;
  test::write_bytes(path("bad.avst"), bytes);
  r = run_cli({"state", "info", path("bad.avst")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "CRC-32 mismatch");
  // No text, no subcommand, a bad --to, an unwritable output.
  r = run_cli({"state", "save", "-m", test::case_model_path(kWorld), "--vocab", vocab(), "-o", path("o")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "give the text with -p or -f");
  EXPECT_EQ(run_cli({"state"}).exit_code, 2);
  EXPECT_EQ(run_cli({"state", "convert", file, path("o"), "-m", test::case_model_path(kWorld), "--to", "npy"}).exit_code, 2);
  r = run_cli({"state", "save", "-m", test::case_model_path(kWorld), "--vocab", vocab(), "-p", "Hi", "-o", path("no/such/dir")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "cannot create");
  // Converting a state file "to aviary" again.
  r = run_cli({"state", "convert", file, path("o"), "-m", test::case_model_path(kWorld), "--to", "aviary"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "already an Aviary state file");
}

}  // namespace
}  // namespace aviary
