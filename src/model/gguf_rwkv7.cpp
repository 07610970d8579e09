// llama.cpp rwkv7 GGUF -> the official x070 names and shapes (the view).
#include "model/gguf_rwkv7.h"

#include <memory>

#include "model/gguf_rwkv7_tensors.h"
#include "util/error.h"

namespace aviary {

using gguf_rwkv7::blk;

bool is_rwkv7_gguf(const Checkpoint& ckpt) {
  const GgufMetadata* m = ckpt.gguf_metadata();
  if (!m) return false;
  const GgufValue* arch = m->find("general.architecture");
  return arch && arch->type() == GgufType::String && arch->as_string() == kRwkv7GgufArch;
}

namespace {

// The x_r..x_g order of time_mix_lerp_fused (llama.cpp stacks them so).
constexpr const char* kLerpNames[6] = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};

class ViewBuilder {
 public:
  explicit ViewBuilder(const Checkpoint& gguf) : g_(gguf) {}

  const TensorView& need(const std::string& name) const {
    if (const TensorView* t = g_.find(name)) return *t;
    throw error_in(g_.path(), "missing tensor " + name + " (expected in llama.cpp's rwkv7 layout)");
  }

  // The GGUF tensor's data under a new name and shape with as many elements.
  void alias(const std::string& official, const std::string& name, std::vector<int64_t> shape) {
    const TensorView& t = need(name);
    if (numel(shape) != t.numel() || (dtype_is_quantized(t.dtype) && !shape.empty() && shape.back() != t.shape.back()))
      throw misshapen(t, shape);
    push(official, t.dtype, std::move(shape), t.data);
  }

  // A big matrix: same shape, stored type, used in place.
  void matrix(const std::string& official, const std::string& name, std::vector<int64_t> shape) {
    const TensorView& t = need(name);
    if (t.shape != shape) throw misshapen(t, shape);
    push(official, t.dtype, std::move(shape), t.data);
  }

  // A small tensor: in place when plain floats, else an fp32 copy.
  void small(const std::string& official, const std::string& name, std::vector<int64_t> shape) {
    const TensorView& t = need(name);
    if (!dtype_is_quantized(t.dtype)) return alias(official, name, std::move(shape));
    if (numel(shape) != t.numel()) throw misshapen(t, shape);
    own(official, std::move(shape), to_f32(t));
    release(t);
  }

  // A LoRA factor stored transposed: official [in, out] from GGUF [out, in],
  // as a transposed view of the file's data (the model multiplies it in the
  // GGUF orientation: WeightReader::transposed_projection); a quantized one
  // as an fp32 copy, viewed the same way.
  void lora(const std::string& official, const std::string& name, int64_t in, int64_t out) {
    const TensorView& t = need(name);
    if (t.shape != std::vector<int64_t>{out, in}) throw misshapen(t, {out, in});
    if (!dtype_is_quantized(t.dtype)) return push(official, t.dtype, {in, out}, t.data, {1, in});
    push(official, DType::F32, {in, out}, keep(to_f32(t)), {1, in});
    release(t);
  }

  // time_mix_lerp_fused [6, 1, 1, C] -> six [1, 1, C] vectors.
  void lerp(const std::string& att, int64_t layer, int64_t C) {
    const TensorView& t = need(blk(layer, "time_mix_lerp_fused"));
    if (t.numel() != 6 * C || (!t.shape.empty() && t.shape.back() != C)) throw misshapen(t, {6, 1, 1, C});
    const std::vector<float> all = dtype_is_quantized(t.dtype) ? to_f32(t) : std::vector<float>{};
    for (int64_t i = 0; i < 6; ++i) {
      const std::string name = att + kLerpNames[i];
      if (all.empty()) push(name, t.dtype, {1, 1, C}, t.data + size_t(i * C) * dtype_size(t.dtype));
      else own(name, {1, 1, C}, {all.begin() + i * C, all.begin() + (i + 1) * C});
    }
  }

  Checkpoint build() {
    Checkpoint view(g_.file(), CheckpointFormat::Gguf, std::move(out_), {}, {}, g_.gguf_metadata_ptr());
    for (auto& buffer : owned_) view.keep_alive(std::move(buffer));
    return view;
  }

 private:
  static int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  static std::vector<float> to_f32(const TensorView& t) { return gguf_rwkv7::to_f32(t); }

  // After a converted copy: the original's pages need not stay resident.
  void release(const TensorView& t) const {
    if (g_.file()) g_.file()->release(t.data, dtype_bytes(t.dtype, t.numel()));
  }

  Error misshapen(const TensorView& t, const std::vector<int64_t>& expected) const {
    return error_in(g_.path(), "tensor " + t.name + " has shape " + shape_string(t.shape) + " (" +
                                   std::string(dtype_name(t.dtype)) + "), expected " + shape_string(expected));
  }

  // Strides default to the contiguous ones of `shape`.
  void push(const std::string& name, DType dtype, std::vector<int64_t> shape, const uint8_t* data,
            std::vector<int64_t> strides = {}) {
    TensorView v;
    v.name = name;
    v.dtype = dtype;
    v.strides = strides.empty() ? contiguous_strides(shape) : std::move(strides);
    v.shape = std::move(shape);
    v.data = data;
    out_.push_back(std::move(v));
  }

  // Keeps `values` alive with the view; returns their bytes.
  const uint8_t* keep(std::vector<float> values) {
    auto buffer = std::make_shared<std::vector<float>>(std::move(values));
    const auto* data = reinterpret_cast<const uint8_t*>(buffer->data());
    owned_.push_back(std::move(buffer));
    return data;
  }

  void own(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
    push(name, DType::F32, std::move(shape), keep(std::move(values)));
  }

  const Checkpoint& g_;
  std::vector<TensorView> out_;
  std::vector<std::shared_ptr<const void>> owned_;
};

int64_t count_gguf_layers(const Checkpoint& g) {
  int64_t n = 0;
  while (g.has(blk(n, "attn_norm"))) ++n;
  return n;
}

int64_t head_size_of(const Checkpoint& g) {
  const GgufValue* v = g.gguf_metadata()->find(std::string(kRwkv7GgufArch) + ".wkv.head_size");
  if (!v || !v->is_integer() || v->as_int() <= 0)
    throw error_in(g.path(), "missing or invalid metadata rwkv7.wkv.head_size");
  return v->as_int();
}

void add_layer(ViewBuilder& b, int64_t i, int64_t C, int64_t H, int64_t N, int64_t F) {
  const std::string p = "blocks." + std::to_string(i) + ".", att = p + "att.";
  if (i == 0) {
    b.small(p + "ln0.weight", "token_embd_norm.weight", {C});
    b.small(p + "ln0.bias", "token_embd_norm.bias", {C});
  }
  b.small(p + "ln1.weight", blk(i, "attn_norm"), {C});
  b.small(p + "ln1.bias", blk(i, "attn_norm", "bias"), {C});
  b.small(p + "ln2.weight", blk(i, "attn_norm_2"), {C});
  b.small(p + "ln2.bias", blk(i, "attn_norm_2", "bias"), {C});
  b.lerp(att, i, C);
  // LoRA ranks may differ per layer: each is read from its own tensor.
  for (const char* n : {"w", "a", "v", "g"}) {
    if (std::string(n) == "v" && i == 0) continue;  // llama.cpp's layer-0 v* are copies of a*
    if (std::string(n) != "g") b.small(att + n + "0", blk(i, std::string("time_mix_") + n + "0"), {1, 1, C});
    const TensorView& down = b.need(blk(i, std::string("time_mix_") + n + "1"));
    const int64_t rank = down.shape.empty() ? 0 : down.shape.front();
    b.lora(att + n + "1", blk(i, std::string("time_mix_") + n + "1"), C, rank);
    b.lora(att + n + "2", blk(i, std::string("time_mix_") + n + "2"), rank, C);
  }
  b.small(att + "k_k", blk(i, "time_mix_k_k"), {1, 1, C});
  b.small(att + "k_a", blk(i, "time_mix_k_a"), {1, 1, C});
  b.small(att + "r_k", blk(i, "time_mix_r_k"), {H, N});
  b.matrix(att + "receptance.weight", blk(i, "time_mix_receptance"), {C, C});
  b.matrix(att + "key.weight", blk(i, "time_mix_key"), {C, C});
  b.matrix(att + "value.weight", blk(i, "time_mix_value"), {C, C});
  b.matrix(att + "output.weight", blk(i, "time_mix_output"), {C, C});
  b.small(att + "ln_x.weight", blk(i, "time_mix_ln"), {C});
  b.small(att + "ln_x.bias", blk(i, "time_mix_ln", "bias"), {C});
  b.small(p + "ffn.x_k", blk(i, "channel_mix_lerp_k"), {1, 1, C});
  b.matrix(p + "ffn.key.weight", blk(i, "channel_mix_key"), {F, C});
  b.matrix(p + "ffn.value.weight", blk(i, "channel_mix_value"), {C, F});
}

}  // namespace

Checkpoint official_rwkv7_view(const Checkpoint& gguf) {
  if (!is_rwkv7_gguf(gguf)) {
    const GgufMetadata* m = gguf.gguf_metadata();
    const GgufValue* arch = m ? m->find("general.architecture") : nullptr;
    const std::string what = !m ? "not a GGUF file"
                             : arch && arch->type() == GgufType::String
                                 ? "GGUF architecture '" + arch->as_string() + "'"
                                 : "a GGUF file without general.architecture";
    throw error_in(gguf.path(), what + ": only llama.cpp's rwkv7 architecture is supported");
  }
  ViewBuilder b(gguf);
  const TensorView& emb = b.need("token_embd.weight");
  if (emb.shape.size() != 2) throw error_in(gguf.path(), "token_embd.weight is not a matrix");
  const int64_t V = emb.shape[0], C = emb.shape[1];
  const int64_t N = head_size_of(gguf);
  if (C % N != 0)
    throw error_in(gguf.path(), "embedding width " + std::to_string(C) + " is not a multiple of the head size " +
                                    std::to_string(N));
  const int64_t L = count_gguf_layers(gguf);
  if (L == 0) throw error_in(gguf.path(), "no layers (missing tensor blk.0.attn_norm.weight)");
  const TensorView& ffn_key = b.need(blk(0, "channel_mix_key"));
  const int64_t F = ffn_key.shape.empty() ? 0 : ffn_key.shape.front();

  b.matrix("emb.weight", "token_embd.weight", {V, C});
  for (int64_t i = 0; i < L; ++i) add_layer(b, i, C, C / N, N, F);
  b.small("ln_out.weight", "output_norm.weight", {C});
  b.small("ln_out.bias", "output_norm.bias", {C});
  b.matrix("head.weight", "output.weight", {V, C});
  return b.build();
}

}  // namespace aviary
