// The official x070 layout <-> llama.cpp's rwkv7 GGUF layout: the v7
// reference models written as GGUF and read back through the official view
// are bit-identical (f32) and give the official logits; the file has the
// names, shapes and metadata llama.cpp's loader asks for; the World
// vocabulary is embedded as its converter does it.
#include <gtest/gtest.h>

#include <cstring>

#include "common/test_util.h"
#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "model/config.h"
#include "model/gguf_rwkv7.h"
#include "model/gguf_rwkv7_tensors.h"
#include "model/gguf_rwkv7_vocab.h"
#include "model/rwkv7.h"
#include "model/weights.h"
#include "text/world_tokenizer.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary {
namespace {

using test::error_of;

std::vector<VocabEntry> world_vocab() {
  static const std::vector<VocabEntry> v = [] {
    const std::string p = (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string();
    return parse_world_vocab(read_file(p), p);
  }();
  return v;
}

std::vector<std::string> v7_cases() {
  std::vector<std::string> out;
  for (const std::string& c : test::refdata_cases())
    if (c.rfind("v7_", 0) == 0) out.push_back(c);
  return out;
}

bool is_layer0_value_residual(const std::string& name) {
  return name == "blocks.0.att.v0" || name == "blocks.0.att.v1" || name == "blocks.0.att.v2";
}

class GgufRwkv7 : public ::testing::TestWithParam<std::string> {
 protected:
  std::string gguf_path() const { return (tmp_ / "model.gguf").string(); }
  Checkpoint original() const { return Checkpoint::open(test::case_model_path(GetParam())); }
  test::TempDir tmp_;
};

TEST_P(GgufRwkv7, F32FileReadsBackBitIdenticalUnderTheOfficialNames) {
  const Checkpoint orig = original();
  const Rwkv7GgufReport r = write_rwkv7_gguf(orig, gguf_path(), DType::F32, world_vocab());
  EXPECT_TRUE(r.f16_fallbacks.empty());
  const Checkpoint gguf = Checkpoint::open(gguf_path());
  ASSERT_TRUE(is_rwkv7_gguf(gguf));
  const Checkpoint view = official_rwkv7_view(gguf);
  size_t compared = 0;
  for (const TensorView& t : orig.tensors()) {
    if (is_layer0_value_residual(t.name)) {
      EXPECT_FALSE(view.has(t.name)) << t.name;  // llama.cpp does not keep them
      continue;
    }
    const TensorView* v = view.find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->shape, t.shape) << t.name;
    const auto a = gguf_rwkv7::to_f32(t), b = gguf_rwkv7::to_f32(*v);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << t.name;
    ++compared;
  }
  EXPECT_EQ(compared + 3, orig.tensors().size());
  EXPECT_EQ(view.tensors().size(), compared);
}

TEST_P(GgufRwkv7, ViewGivesTheOfficialLogits) {
  write_rwkv7_gguf(original(), gguf_path(), DType::F32, {});
  Checkpoint view = official_rwkv7_view(Checkpoint::open(gguf_path()));
  ModelConfig config = detect_config(view);
  const auto model = make_rwkv7(std::move(view), std::move(config));
  const auto dir = test::refdata_case(GetParam());
  const auto m = test::read_json(dir / "manifest.json");
  const auto tokens = test::case_tokens(GetParam());
  State state = model->new_state();
  std::vector<float> logits;
  model->forward(tokens, state, logits, true);
  EXPECT_LE(test::max_abs_diff(logits, test::read_floats(dir / "logits_seq_full.bin")),
            m["suggested_tolerances"]["fp32_engine_logits_atol"].get<float>());
}

TEST_P(GgufRwkv7, HalfPrecisionMatricesAreTheRoundedOriginals) {
  const Checkpoint orig = original();
  write_rwkv7_gguf(orig, gguf_path(), DType::F16, {});
  const Checkpoint view = official_rwkv7_view(Checkpoint::open(gguf_path()));
  for (const char* name : {"emb.weight", "head.weight", "blocks.1.att.key.weight", "blocks.1.ffn.value.weight"}) {
    const TensorView& v = view.get(name);
    EXPECT_EQ(v.dtype, DType::F16) << name;
    const auto a = gguf_rwkv7::to_f32(orig.get(name)), b = gguf_rwkv7::to_f32(v);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(f16_to_f32(f32_to_f16(a[i])), b[i]) << name << " " << i;
  }
  EXPECT_EQ(view.get("blocks.1.att.w1").dtype, DType::F32);  // LoRA stays f32
}

// The LoRA factors: GGUF keeps them [out, in], the orientation ops::linear
// takes, so the view shows the official [in, out] as a transposed view of the
// file (no copy), and WeightReader::transposed_projection uses the file's
// bytes in place; from the official file it makes a transposed copy. Both
// give the same [out, in] matrix.
TEST_P(GgufRwkv7, LoraFactorsAreUsedInPlaceFromTheFile) {
  const Checkpoint orig = original();
  write_rwkv7_gguf(orig, gguf_path(), DType::F32, {});
  const Checkpoint gguf = Checkpoint::open(gguf_path());
  const Checkpoint view = official_rwkv7_view(gguf);
  for (auto [layer, lora] : {std::pair{1, "w1"}, {1, "a2"}, {1, "v1"}, {0, "g2"}}) {
    const std::string name = "blocks." + std::to_string(layer) + ".att." + lora;
    const TensorView& o = orig.get(name);
    const TensorView& v = view.get(name);
    ASSERT_EQ(v.shape, o.shape) << name;
    const int64_t in = o.shape[0], out = o.shape[1];
    EXPECT_EQ(v.strides, (std::vector<int64_t>{1, in})) << name;
    EXPECT_EQ(v.data, gguf.get(gguf_rwkv7::blk(layer, std::string("time_mix_") + lora)).data) << name;
    WeightReader from_view(view), from_orig(orig);
    const ops::Matrix a = from_view.transposed_projection(name, in, out);
    const ops::Matrix b = from_orig.transposed_projection(name, in, out);
    EXPECT_EQ(a.data, v.data) << name << ": used in place";
    EXPECT_NE(b.data, o.data) << name << ": a transposed copy";
    ASSERT_EQ(a.rows, out);
    ASSERT_EQ(a.cols, in);
    std::vector<float> ra(static_cast<size_t>(in)), rb(static_cast<size_t>(in));
    for (int64_t r = 0; r < out; ++r) {
      ops::convert_to_f32(a.row_ptr(r), a.dtype, in, ra.data());
      ops::convert_to_f32(b.row_ptr(r), b.dtype, in, rb.data());
      for (int64_t i = 0; i < in; ++i) ASSERT_EQ(ra[size_t(i)], o.at(i * out + r)) << name << " " << r << "," << i;
      ASSERT_EQ(ra, rb) << name << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(V7, GgufRwkv7, ::testing::ValuesIn(v7_cases()));

// Names, ne and metadata as llama.cpp's rwkv7 loader (llama-model.cpp) reads them.
TEST(GgufRwkv7Layout, MatchesWhatLlamaCppLoads) {
  test::TempDir tmp;
  const std::string name = "v7_tiny_L2_C128_V1000_fp32";
  const Checkpoint orig = Checkpoint::open(test::case_model_path(name));
  const ModelConfig c = detect_config(orig);
  const std::string p = (tmp / "m.gguf").string();
  write_rwkv7_gguf(orig, p, DType::F32, world_vocab(), "tiny");
  const auto f = MappedFile::open(p);
  const GgufFile g = parse_gguf(f->bytes(), p);
  auto ne = [&](const std::string& n) {
    for (const auto& t : g.tensors)
      if (t.name == n) return t.ne;
    ADD_FAILURE() << "missing " << n;
    return std::vector<uint64_t>{};
  };
  using U = std::vector<uint64_t>;
  const uint64_t C = uint64_t(c.n_embd), V = uint64_t(c.vocab_size), F = uint64_t(c.ffn_dim);
  EXPECT_EQ(ne("token_embd.weight"), (U{C, V}));
  EXPECT_EQ(ne("token_embd_norm.weight"), (U{C}));
  EXPECT_EQ(ne("output.weight"), (U{C, V}));
  EXPECT_EQ(ne("output_norm.bias"), (U{C}));
  for (uint64_t i = 0; i < 2; ++i) {
    auto b = [&](const std::string& w) { return "blk." + std::to_string(i) + "." + w + ".weight"; };
    EXPECT_EQ(ne(b("time_mix_lerp_fused")), (U{C, 1, 1, 6}));
    EXPECT_EQ(ne(b("time_mix_w1")), (U{C, uint64_t(c.lora_w)}));
    EXPECT_EQ(ne(b("time_mix_w2")), (U{uint64_t(c.lora_w), C}));
    EXPECT_EQ(ne(b("time_mix_a1")), (U{C, uint64_t(c.lora_a)}));
    EXPECT_EQ(ne(b("time_mix_g2")), (U{uint64_t(c.lora_g), C}));
    // Layer 0's v1 has the iclr (a) rank: it is a copy of a1.
    EXPECT_EQ(ne(b("time_mix_v1")), (U{C, uint64_t(i == 0 ? c.lora_a : c.lora_v)}));
    EXPECT_EQ(ne(b("time_mix_r_k")), (U{C}));
    EXPECT_EQ(ne(b("time_mix_k_k")), (U{C}));
    EXPECT_EQ(ne(b("time_mix_receptance")), (U{C, C}));
    EXPECT_EQ(ne(b("channel_mix_lerp_k")), (U{C}));
    EXPECT_EQ(ne(b("channel_mix_key")), (U{C, F}));
    EXPECT_EQ(ne(b("channel_mix_value")), (U{F, C}));
    EXPECT_EQ(ne("blk." + std::to_string(i) + ".time_mix_ln.bias"), (U{C}));
  }
  // Layer 0's v0/v1/v2 carry a0/a1/a2; the lerp rows are x_r, x_w, x_k, x_v, x_a, x_g.
  const Checkpoint gg = Checkpoint::open(p);
  EXPECT_EQ(0, std::memcmp(gg.get("blk.0.time_mix_v1.weight").data, gg.get("blk.0.time_mix_a1.weight").data,
                           gg.get("blk.0.time_mix_a1.weight").nbytes()));
  EXPECT_EQ(gguf_rwkv7::to_f32(gg.get("blk.1.time_mix_lerp_fused.weight"))[3 * C + 5],
            gguf_rwkv7::to_f32(orig.get("blocks.1.att.x_v"))[5]);
  // w1 is stored transposed: GGUF [rank][C] = official [C][rank].
  EXPECT_EQ(gguf_rwkv7::to_f32(gg.get("blk.1.time_mix_w1.weight"))[2 * C + 7],
            gguf_rwkv7::to_f32(orig.get("blocks.1.att.w1"))[7 * uint64_t(c.lora_w) + 2]);
  const GgufMetadata& m = g.metadata;
  EXPECT_EQ(m.get("general.architecture").as_string(), "rwkv7");
  EXPECT_EQ(m.get("general.name").as_string(), "tiny");
  EXPECT_EQ(m.get("rwkv7.embedding_length").as_int(), c.n_embd);
  EXPECT_EQ(m.get("rwkv7.block_count").as_int(), 2);
  EXPECT_EQ(m.get("rwkv7.feed_forward_length").as_int(), c.ffn_dim);
  EXPECT_EQ(m.get("rwkv7.wkv.head_size").as_int(), 64);
  EXPECT_EQ(m.get("rwkv7.attention.decay_lora_rank").as_int(), c.lora_w);
  EXPECT_EQ(m.get("rwkv7.attention.iclr_lora_rank").as_int(), c.lora_a);
  EXPECT_EQ(m.get("rwkv7.attention.value_residual_mix_lora_rank").as_int(), c.lora_v);
  EXPECT_EQ(m.get("rwkv7.attention.gate_lora_rank").as_int(), c.lora_g);
  EXPECT_FLOAT_EQ(float(m.get("rwkv7.attention.layer_norm_epsilon").as_float()), 1e-5f);
  EXPECT_EQ(m.get("rwkv7.context_length").as_int(), 1 << 20);
  EXPECT_EQ(m.get("tokenizer.ggml.model").as_string(), "rwkv");
  // A 1000-row model keeps the first 1000 ids of the vocabulary.
  const auto& tokens = m.get("tokenizer.ggml.tokens").as_array();
  ASSERT_EQ(tokens.size(), V);
  EXPECT_EQ(tokens[0].as_string(), "<s>");
  EXPECT_EQ(tokens[11].as_string(), "\\n");  // id 11 is byte 0x0a
  EXPECT_EQ(m.get("tokenizer.ggml.token_type").as_array()[0].as_int(), 3);
  EXPECT_EQ(m.get("tokenizer.ggml.token_type").as_array()[1].as_int(), 1);
  EXPECT_EQ(m.get("tokenizer.ggml.eot_token_id").as_int(), 261);
}

TEST(GgufRwkv7Vocab, TokenTextIsPythonsBytesRepr) {
  EXPECT_EQ(rwkv_token_text("a b"), "a b");
  EXPECT_EQ(rwkv_token_text("\n\t\r"), "\\n\\t\\r");
  EXPECT_EQ(rwkv_token_text("\xe4\xb8\x80"), "\\xe4\\xb8\\x80");
  EXPECT_EQ(rwkv_token_text(std::string("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(rwkv_token_text("\\"), "\\\\");
  EXPECT_EQ(rwkv_token_text("it's"), "it's");          // repr uses "..." then: ' is plain
  EXPECT_EQ(rwkv_token_text("'\""), "\\'\"");           // both quotes: '...' and \'
  EXPECT_EQ(rwkv_token_text("\""), "\"");
  EXPECT_NE(error_of([] { rwkv_token_bytes("\\x4"); }).find("bad \\x escape"), std::string::npos);
  EXPECT_NE(error_of([] { rwkv_token_bytes("a\\"); }).find("lone backslash"), std::string::npos);
}

TEST(GgufRwkv7Vocab, WorldVocabularyRoundTripsThroughGgufMetadata) {
  const auto vocab = world_vocab();
  for (const VocabEntry& e : vocab) ASSERT_EQ(rwkv_token_bytes(rwkv_token_text(e.bytes)), e.bytes) << e.id;
  GgufMetadata m;
  EXPECT_EQ(add_world_vocab(m, vocab, 65536), 0);
  EXPECT_EQ(m.get("tokenizer.ggml.tokens").as_array()[65535].as_string(), "[PAD65535]");
  const auto back = world_vocab_from_gguf(m);
  ASSERT_EQ(back.size(), vocab.size());
  for (size_t i = 0; i < back.size(); ++i) {
    ASSERT_EQ(back[i].id, vocab[i].id);
    ASSERT_EQ(back[i].bytes, vocab[i].bytes);
  }
  // ... and back into a tokenizer that encodes like the original.
  const auto tok = WorldTokenizer::parse(world_vocab_file_text(back), "from gguf");
  const std::string p = (test::shared_dir() / "vocab" / "rwkv_vocab_v20230424.txt").string();
  const auto ref = WorldTokenizer::load(p);
  const std::string text = "Hello, 世界! It's \"quoted\" \\ and\n\ttabbed 🐦";
  EXPECT_EQ(tok.encode(text), ref.encode(text));
}

TEST(GgufRwkv7Errors, OnlyRwkv7IsWritten) {
  test::TempDir tmp;
  for (const std::string& c : test::refdata_cases()) {
    if (c.rfind("v7_", 0) == 0) continue;
    const Checkpoint ck = Checkpoint::open(test::case_model_path(c));
    const std::string e = error_of([&] { write_rwkv7_gguf(ck, (tmp / "x.gguf").string(), DType::F16, {}); });
    EXPECT_NE(e.find("GGUF output supports RWKV-7 only"), std::string::npos) << c << ": " << e;
  }
}

TEST(GgufRwkv7Errors, ViewNamesWhatIsWrong) {
  test::TempDir tmp;
  const Checkpoint pth = Checkpoint::open(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  EXPECT_NE(error_of([&] { official_rwkv7_view(pth); }).find("not a GGUF file"), std::string::npos);
  const std::string p = (tmp / "m.gguf").string();
  write_rwkv7_gguf(pth, p, DType::F32, {});
  // Another architecture, and a missing tensor.
  const auto f = MappedFile::open(p);
  GgufFile g = parse_gguf(f->bytes(), p);
  auto rewrite = [&](const GgufMetadata& meta, const std::string& skip) {
    std::vector<GgufTensorOut> ts;
    for (const auto& t : g.tensors)
      if (t.name != skip)
        ts.push_back(gguf_tensor(t.name, *dtype_of_ggml(t.ggml_type), shape_from_ne(t.ne),
                                 {f->data() + g.data_offset + t.offset, size_t(t.nbytes)}));
    const std::string out = (tmp / "bad.gguf").string();
    write_gguf(out, meta, ts);
    return Checkpoint::open(out);
  };
  GgufMetadata other = g.metadata;
  other.set("general.architecture", GgufValue::string("llama"));
  EXPECT_NE(error_of([&] { official_rwkv7_view(rewrite(other, "")); }).find("GGUF architecture 'llama'"),
            std::string::npos);
  const std::string e = error_of([&] { official_rwkv7_view(rewrite(g.metadata, "blk.1.time_mix_g2.weight")); });
  EXPECT_NE(e.find("missing tensor blk.1.time_mix_g2.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.gguf"), std::string::npos) << e;
}

TEST(GgufRwkv7Quant, BlockTypesFallBackToF16ForPartialRows) {
  test::TempDir tmp;
  const Checkpoint pth = Checkpoint::open(test::case_model_path("v7_tiny_L2_C128_V1000_fp32"));
  const std::string p = (tmp / "q.gguf").string();
#if __has_include("ops/quant.h")
  // q4_k blocks are 256 values: the C = 128 rows cannot use them.
  const Rwkv7GgufReport r = write_rwkv7_gguf(pth, p, DType::Q4_K, {});
  EXPECT_FALSE(r.f16_fallbacks.empty());
  const Checkpoint view = official_rwkv7_view(Checkpoint::open(p));
  EXPECT_EQ(view.get("blocks.0.att.key.weight").dtype, DType::F16);
  EXPECT_EQ(view.get("blocks.0.ffn.value.weight").dtype, DType::Q4_K);  // rows of F = 512
  const Rwkv7GgufReport q8 = write_rwkv7_gguf(pth, p, DType::Q8_0, {});
  EXPECT_TRUE(q8.f16_fallbacks.empty());
  EXPECT_EQ(official_rwkv7_view(Checkpoint::open(p)).get("head.weight").dtype, DType::Q8_0);
#else
  EXPECT_NE(error_of([&] { write_rwkv7_gguf(pth, p, DType::Q8_0, {}); }).find("quantization kernels"),
            std::string::npos);
#endif
}

}  // namespace
}  // namespace aviary
