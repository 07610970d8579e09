// Architecture and dimensions of a checkpoint, read from its tensor names and
// shapes alone (never from a formula: released models deviate from every one).
#pragma once

#include <cstdint>
#include <string>

#include "io/checkpoint.h"

namespace aviary {

enum class Arch { RWKV4, RWKV5, RWKV6, RWKV7 };

struct ModelConfig {
  Arch arch = Arch::RWKV7;
  std::string version;      // "7" / "x070", as the official code names it
  int64_t n_layer = 0;
  int64_t n_embd = 0;       // C
  int64_t n_head = 0;       // H
  int64_t head_size = 0;    // N
  int64_t vocab_size = 0;   // V
  int64_t ffn_dim = 0;      // channel-mix width
  // RWKV-7 LoRA ranks (decay w, in-context rate a, value residual v, gate g),
  // read from layer 1 when there is one (layer 0 has no value-residual LoRA).
  int64_t lora_w = 0, lora_a = 0, lora_v = 0, lora_g = 0;

  std::string arch_name() const;  // "RWKV-7 (x070, Goose)"
};

// Throws aviary::Error naming the file and the missing or contradicting tensor,
// or saying which architecture was recognised but is not supported.
ModelConfig detect_config(const Checkpoint& ckpt);

// Number of consecutive `blocks.N.` prefixes starting at 0.
int64_t count_layers(const Checkpoint& ckpt);

}  // namespace aviary
