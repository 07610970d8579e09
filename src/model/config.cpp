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

void detect_rwkv7(const Checkpoint& ckpt, ModelConfig& c) {
  c.arch = Arch::RWKV7;
  c.version = "x070";
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
  if (c.n_head * c.head_size != c.n_embd)
    throw error_in(ckpt.path(), "blocks.0.att.r_k gives " + std::to_string(c.n_head) + " heads of " +
                                    std::to_string(c.head_size) + ", which does not match n_embd " +
                                    std::to_string(c.n_embd));
}

}  // namespace

ModelConfig detect_config(const Checkpoint& ckpt) {
  ModelConfig c;
  c.n_layer = count_layers(ckpt);
  if (c.n_layer == 0)
    throw error_in(ckpt.path(), "no 'blocks.0.ln1.weight' tensor: not an RWKV checkpoint");
  c.vocab_size = dim_of(ckpt, "emb.weight", 2, 0);
  c.n_embd = dim_of(ckpt, "emb.weight", 2, 1);

  if (ckpt.has("blocks.0.att.r_k") || ckpt.has("blocks.0.att.x_r")) {
    detect_rwkv7(ckpt, c);
    return c;
  }
  std::string found;
  if (ckpt.has("blocks.0.att.time_maa_x")) found = "RWKV-6 (x060)";
  else if (ckpt.has("blocks.0.att.time_faaaa")) found = "RWKV-5 (x052)";
  else if (ckpt.has("blocks.0.att.time_first")) found = "RWKV-4";
  if (!found.empty())
    throw error_in(ckpt.path(), "unsupported architecture: " + found + " checkpoints are not supported yet");
  throw error_in(ckpt.path(), "unsupported architecture: the tensors of block 0 match no known RWKV version");
}

}  // namespace aviary
