// The official x070 layout -> a llama.cpp rwkv7 GGUF file (the writer).
#include <cstring>
#include <filesystem>
#include <memory>

#include "io/gguf_writer.h"
#include "model/config.h"
#include "model/gguf_rwkv7.h"
#include "model/gguf_rwkv7_tensors.h"
#include "model/gguf_rwkv7_vocab.h"
#include "util/error.h"

namespace aviary {

using gguf_rwkv7::blk;

namespace {

// What convert_hf_to_gguf.py writes for RWKV-7: a context length of 2^20 (the
// model has no hard limit), LayerNorm eps 1e-5, head_count 0.
constexpr uint32_t kContextLength = 1u << 20;
constexpr float kLayerNormEps = 1e-5f;
constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION

// llama_ftype of a file whose matrices are mostly `t` (informational only).
uint32_t file_type_of(DType t) {
  switch (t) {
    case DType::F32: return 0;   // ALL_F32
    case DType::F16: return 1;   // MOSTLY_F16
    case DType::Q4_0: return 2;  // MOSTLY_Q4_0
    case DType::Q8_0: return 7;  // MOSTLY_Q8_0
    case DType::Q4_K: return 14; // MOSTLY_Q4_K_S: every matrix q4_k, no q6_k mix
    case DType::Q4_1: return 3;  // MOSTLY_Q4_1
    case DType::Q5_0: return 8;  // MOSTLY_Q5_0
    case DType::Q5_1: return 9;  // MOSTLY_Q5_1
    case DType::Q5_K: return 16; // MOSTLY_Q5_K_S: every matrix q5_k
    case DType::Q6_K: return 18; // MOSTLY_Q6_K
    case DType::BF16: return 32; // MOSTLY_BF16
  }
  return 0;
}

class GgufBuilder {
 public:
  GgufBuilder(const Checkpoint& src, DType matrix_type, Rwkv7GgufReport& report)
      : src_(src), matrix_type_(matrix_type), report_(report) {}

  const TensorView& need(const std::string& name) const {
    if (const TensorView* t = src_.find(name)) return *t;
    throw error_in(src_.path(), "missing tensor " + name);
  }

  // An fp32 tensor computed now (the small ones).
  void f32(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
    auto data = std::make_shared<std::vector<float>>(std::move(values));
    out_.push_back({name, DType::F32, std::move(shape), [data](uint8_t* dst) {
                      std::memcpy(dst, data->data(), data->size() * 4);
                    }});
  }

  // A source tensor with as many elements, as fp32.
  void small(const std::string& name, const std::string& official, std::vector<int64_t> shape) {
    const TensorView& t = need(official);
    if (t.numel() != count(shape))
      throw error_in(src_.path(), "tensor " + official + " has shape " + shape_string(t.shape) + ", expected " +
                                      std::to_string(count(shape)) + " elements");
    f32(name, std::move(shape), gguf_rwkv7::to_f32(t));
  }

  // A LoRA factor [in, out] stored transposed as [out, in].
  void lora(const std::string& name, const std::string& official) {
    const TensorView& t = need(official);
    if (t.shape.size() != 2) throw error_in(src_.path(), "tensor " + official + " is not a matrix");
    const int64_t in = t.shape[0], out = t.shape[1];
    f32(name, {out, in}, gguf_rwkv7::transpose(gguf_rwkv7::to_f32(t), in, out));
  }

  // A big matrix in the chosen type, converted row by row while writing.
  void matrix(const std::string& name, const std::string& official) {
    const TensorView& t = need(official);
    if (t.shape.size() != 2) throw error_in(src_.path(), "tensor " + official + " is not a matrix");
    const int64_t rows = t.shape[0], cols = t.shape[1];
    DType type = matrix_type_;
    if (cols % dtype_block_elems(type) != 0) {
      type = DType::F16;
      report_.f16_fallbacks.push_back(name);
    }
    const TensorView* src = &t;
    out_.push_back({name, type, {rows, cols}, [src, rows, cols, type](uint8_t* dst) {
                      if (src->dtype == type && src->is_contiguous()) {
                        std::memcpy(dst, src->data, dtype_bytes(type, rows * cols));
                        return;
                      }
                      std::vector<float> row(static_cast<size_t>(cols));
                      const size_t row_bytes = dtype_bytes(type, cols);
                      for (int64_t r = 0; r < rows; ++r) {
                        gguf_rwkv7::row_to_f32(*src, r, cols, row.data());
                        gguf_rwkv7::encode_row(row.data(), cols, type, dst + size_t(r) * row_bytes);
                      }
                    }});
  }

  std::vector<GgufTensorOut>& tensors() { return out_; }

 private:
  static int64_t count(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }

  const Checkpoint& src_;
  DType matrix_type_;
  Rwkv7GgufReport& report_;
  std::vector<GgufTensorOut> out_;
};

void add_layer(GgufBuilder& b, int64_t i, int64_t C) {
  const std::string p = "blocks." + std::to_string(i) + ".", att = p + "att.";
  b.small(blk(i, "attn_norm"), p + "ln1.weight", {C});
  b.small(blk(i, "attn_norm", "bias"), p + "ln1.bias", {C});
  b.small(blk(i, "attn_norm_2"), p + "ln2.weight", {C});
  b.small(blk(i, "attn_norm_2", "bias"), p + "ln2.bias", {C});
  std::vector<float> lerp;
  for (const char* x : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"}) {
    const std::vector<float> v = gguf_rwkv7::to_f32(b.need(att + x));
    if (int64_t(v.size()) != C) throw Error("tensor " + att + x + " does not have " + std::to_string(C) + " elements");
    lerp.insert(lerp.end(), v.begin(), v.end());
  }
  b.f32(blk(i, "time_mix_lerp_fused"), {6, 1, 1, C}, std::move(lerp));
  for (const char* n : {"w", "a", "v", "g"}) {
    // Layer 0 has no value residual; llama.cpp still wants v0/v1/v2 there and
    // its converter fills them with a0/a1/a2.
    const std::string from = std::string(n) == "v" && i == 0 ? "a" : n;
    const std::string to = std::string("time_mix_") + n;
    if (std::string(n) != "g") b.small(blk(i, to + "0"), att + from + "0", {C});
    b.lora(blk(i, to + "1"), att + from + "1");
    b.lora(blk(i, to + "2"), att + from + "2");
  }
  b.small(blk(i, "time_mix_k_k"), att + "k_k", {C});
  b.small(blk(i, "time_mix_k_a"), att + "k_a", {C});
  b.small(blk(i, "time_mix_r_k"), att + "r_k", {C});
  b.matrix(blk(i, "time_mix_receptance"), att + "receptance.weight");
  b.matrix(blk(i, "time_mix_key"), att + "key.weight");
  b.matrix(blk(i, "time_mix_value"), att + "value.weight");
  b.matrix(blk(i, "time_mix_output"), att + "output.weight");
  b.small(blk(i, "time_mix_ln"), att + "ln_x.weight", {C});
  b.small(blk(i, "time_mix_ln", "bias"), att + "ln_x.bias", {C});
  b.small(blk(i, "channel_mix_lerp_k"), p + "ffn.x_k", {C});
  b.matrix(blk(i, "channel_mix_key"), p + "ffn.key.weight");
  b.matrix(blk(i, "channel_mix_value"), p + "ffn.value.weight");
}

GgufMetadata rwkv7_metadata(const ModelConfig& c, DType matrix_type, const std::string& name) {
  const std::string a = kRwkv7GgufArch;
  GgufMetadata m;
  auto u32 = [](int64_t v) { return GgufValue::u32(uint32_t(v)); };
  m.set("general.architecture", GgufValue::string(a));
  m.set("general.type", GgufValue::string("model"));
  m.set("general.name", GgufValue::string(name));
  m.set(a + ".context_length", u32(kContextLength));
  m.set(a + ".embedding_length", u32(c.n_embd));
  m.set(a + ".block_count", u32(c.n_layer));
  m.set(a + ".attention.layer_norm_epsilon", GgufValue::f32(kLayerNormEps));
  m.set(a + ".wkv.head_size", u32(c.head_size));
  m.set(a + ".attention.decay_lora_rank", u32(c.lora_w));
  m.set(a + ".attention.iclr_lora_rank", u32(c.lora_a));
  m.set(a + ".attention.value_residual_mix_lora_rank", u32(c.lora_v));
  m.set(a + ".attention.gate_lora_rank", u32(c.lora_g));
  m.set(a + ".feed_forward_length", u32(c.ffn_dim));
  m.set("general.file_type", u32(file_type_of(matrix_type)));
  m.set(a + ".attention.head_count", u32(0));
  if (dtype_is_quantized(matrix_type)) m.set("general.quantization_version", u32(kQuantizationVersion));
  return m;
}

}  // namespace

Rwkv7GgufReport write_rwkv7_gguf(const Checkpoint& official, const std::string& path, DType matrix_type,
                                 const std::vector<VocabEntry>& vocab, const std::string& model_name) {
  const ModelConfig c = detect_config(official);
  if (c.arch != Arch::RWKV7)
    throw error_in(official.path(), "GGUF output supports RWKV-7 only; this checkpoint is " + c.arch_name());
  Rwkv7GgufReport report;
  GgufBuilder b(official, matrix_type, report);
  b.matrix("token_embd.weight", "emb.weight");
  b.small("token_embd_norm.weight", "blocks.0.ln0.weight", {c.n_embd});
  b.small("token_embd_norm.bias", "blocks.0.ln0.bias", {c.n_embd});
  for (int64_t i = 0; i < c.n_layer; ++i) add_layer(b, i, c.n_embd);
  b.small("output_norm.weight", "ln_out.weight", {c.n_embd});
  b.small("output_norm.bias", "ln_out.bias", {c.n_embd});
  b.matrix("output.weight", "head.weight");

  const std::string name = model_name.empty() ? std::filesystem::path(path).stem().string() : model_name;
  GgufMetadata meta = rwkv7_metadata(c, matrix_type, name);
  if (!vocab.empty()) {
    report.vocab_dropped = add_world_vocab(meta, vocab, c.vocab_size);
    report.vocab_tokens = int64_t(vocab.size()) - report.vocab_dropped;
  }
  report.file_bytes = write_gguf(path, meta, b.tensors());
  return report;
}

}  // namespace aviary
