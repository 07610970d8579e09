#include "model/config.h"

#include "model/weights.h"
#include "util/error.h"

namespace aviary {

std::string ModelConfig::arch_name() const {
  switch (arch) {
    case Arch::RWKV4: return "RWKV-4";
    case Arch::RWKV5: return "RWKV-5 (x052, Eagle)";
    case Arch::RWKV6: return "RWKV-6 (x060, Finch)";
    case Arch::RWKV7: return "RWKV-7 (x070, Goose)";
  }
  return "unknown";
}

int64_t count_layers(const Checkpoint& ckpt) {
  int64_t n = 0;
  while (ckpt.has("blocks." + std::to_string(n) + ".ln1.weight")) ++n;
  return n;
}

namespace {

// The dimension `dim` of a tensor, with an error naming it when the tensor is
// missing or has fewer dimensions than expected.
int64_t dim_of(const Checkpoint& ckpt, const std::string& name, size_t ndim, size_t dim) {
  const TensorView* t = ckpt.find(name);
  if (!t) throw error_in(ckpt.path(), "missing tensor '" + name + "'");
  // Per-channel vectors are stored [1, 1, C]: drop leading 1s beyond `ndim`.
  std::vector<int64_t> shape = t->shape;
  while (shape.size() > ndim && shape.front() == 1) shape.erase(shape.begin());
  if (shape.size() != ndim)
    throw error_in(ckpt.path(), "tensor '" + name + "' has shape " + shape_string(t->shape) +
                                    ", expected " + std::to_string(ndim) + " dimensions");
  return shape[dim];
}

void set_version(ModelConfig& c, Arch arch, const char* version, const char* sub_version) {
  c.arch = arch;
  c.version = version;
  c.sub_version = sub_version;
}

void check_heads(const Checkpoint& ckpt, const ModelConfig& c, const std::string& source) {
  if (c.n_head * c.head_size != c.n_embd)
    throw error_in(ckpt.path(), source + " gives " + std::to_string(c.n_head) + " heads of " +
                                    std::to_string(c.head_size) + ", which does not match n_embd " +
                                    std::to_string(c.n_embd));
}

// RWKV-4/5/6 keep separate attention and embedding widths in principle;
// every released model has them equal, which is all that is supported.
void check_attention_width(const Checkpoint& ckpt, const ModelConfig& c) {
  const int64_t dim_att = dim_of(ckpt, "blocks.0.att.key.weight", 2, 0);
  if (dim_att != c.n_embd)
    throw error_in(ckpt.path(), "attention width " + std::to_string(dim_att) + " differs from n_embd " +
                                    std::to_string(c.n_embd) + ": not supported");
}

void detect_rwkv4(const Checkpoint& ckpt, ModelConfig& c) {
  set_version(c, Arch::RWKV4, "4", "4.0");
  c.ffn_dim = dim_of(ckpt, "blocks.0.ffn.key.weight", 2, 0);
  check_attention_width(ckpt, c);
}

void detect_rwkv5(const Checkpoint& ckpt, ModelConfig& c) {
  // 5.0 has no gate; 5.1 has a gate but one decay per head; 5.2 (every
  // released Eagle model) has a decay per channel, [H, N].
  if (!ckpt.has("blocks.0.att.gate.weight"))
    throw error_in(ckpt.path(), "unsupported architecture: RWKV-5.0 (a research layout without the gate; "
                                "released Eagle models are 5.2)");
  const TensorView& decay = *ckpt.find("blocks.0.att.time_decay");
  if (decay.shape.size() < 2 || decay.shape.back() <= 1)
    throw error_in(ckpt.path(), "unsupported architecture: RWKV-5.1 (one decay per head, time_decay " +
                                    shape_string(decay.shape) + "; released Eagle models are 5.2)");
  set_version(c, Arch::RWKV5, "x052", "5.2");
  c.n_head = dim_of(ckpt, "blocks.0.att.time_decay", 2, 0);
  c.head_size = dim_of(ckpt, "blocks.0.att.time_decay", 2, 1);
  c.ffn_dim = dim_of(ckpt, "blocks.0.ffn.key.weight", 2, 0);
  check_heads(ckpt, c, "blocks.0.att.time_decay");
  check_attention_width(ckpt, c);
}

void detect_rwkv6(const Checkpoint& ckpt, ModelConfig& c) {
  set_version(c, Arch::RWKV6, "x060", "6.0");
  c.n_head = dim_of(ckpt, "blocks.0.att.time_faaaa", 2, 0);
  c.head_size = dim_of(ckpt, "blocks.0.att.time_faaaa", 2, 1);
  c.ffn_dim = dim_of(ckpt, "blocks.0.ffn.key.weight", 2, 0);
  const int64_t mix5 = dim_of(ckpt, "blocks.0.att.time_maa_w1", 2, 1);
  if (mix5 % 5 != 0)
    throw error_in(ckpt.path(), "tensor 'blocks.0.att.time_maa_w1' has " + std::to_string(mix5) +
                                    " columns, expected 5 x the LoRA rank");
  c.lora_mix = mix5 / 5;
  c.lora_decay = dim_of(ckpt, "blocks.0.att.time_decay_w1", 2, 1);
  check_heads(ckpt, c, "blocks.0.att.time_faaaa");
  check_attention_width(ckpt, c);
}

void detect_rwkv7(const Checkpoint& ckpt, ModelConfig& c) {
  set_version(c, Arch::RWKV7, "x070", "7.0");
  c.n_head = dim_of(ckpt, "blocks.0.att.r_k", 2, 0);
  c.head_size = dim_of(ckpt, "blocks.0.att.r_k", 2, 1);
  c.ffn_dim = dim_of(ckpt, "blocks.0.ffn.key.weight", 2, 0);
  // Layer 0 has no value-residual mixing; read every rank from the last layer
  // so that a one-layer model still works for w, a and g.
  const std::string p = "blocks." + std::to_string(c.n_layer - 1) + ".att.";
  c.lora_w = dim_of(ckpt, p + "w1", 2, 1);
  c.lora_a = dim_of(ckpt, p + "a1", 2, 1);
  c.lora_g = dim_of(ckpt, p + "g1", 2, 1);
  if (c.n_layer > 1) c.lora_v = dim_of(ckpt, p + "v1", 2, 1);
  check_heads(ckpt, c, "blocks.0.att.r_k");
}

}  // namespace

ModelConfig detect_config(const Checkpoint& ckpt) {
  ModelConfig c;
  c.n_layer = count_layers(ckpt);
  if (c.n_layer == 0)
    throw error_in(ckpt.path(), "no 'blocks.0.ln1.weight' tensor: not an RWKV checkpoint");
  c.vocab_size = dim_of(ckpt, "emb.weight", 2, 0);
  c.n_embd = dim_of(ckpt, "emb.weight", 2, 1);

  // Told apart by the tensors only each generation has.
  if (ckpt.has("blocks.0.att.r_k") || ckpt.has("blocks.0.att.x_r")) detect_rwkv7(ckpt, c);
  else if (ckpt.has("blocks.0.att.time_maa_x")) detect_rwkv6(ckpt, c);
  else if (ckpt.has("blocks.0.att.ln_x.weight") && ckpt.has("blocks.0.att.time_decay")) detect_rwkv5(ckpt, c);
  else if (ckpt.has("blocks.0.att.time_first")) detect_rwkv4(ckpt, c);
  else throw error_in(ckpt.path(), "unsupported architecture: the tensors of block 0 match no known RWKV version");
  return c;
}

}  // namespace aviary
