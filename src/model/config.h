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
  std::string version;      // the official code's name: "4", "x052", "x060", "x070"
  std::string sub_version;  // as the official loader reports it: "4.0", "5.2", "6.0", "7.0"
  int64_t n_layer = 0;
  int64_t n_embd = 0;       // C
  int64_t n_head = 0;       // H
  int64_t head_size = 0;    // N
  int64_t vocab_size = 0;   // V
  int64_t ffn_dim = 0;      // channel-mix width
  // RWKV-7 LoRA ranks (decay w, in-context rate a, value residual v, gate g),
  // read from layer 1 when there is one (layer 0 has no value-residual LoRA).
  int64_t lora_w = 0, lora_a = 0, lora_v = 0, lora_g = 0;
  // RWKV-6 LoRA ranks: the data-dependent token-shift mix (time_maa_w1 is
  // [C, 5 * rank]) and the decay (time_decay_w1 is [C, rank]).
  int64_t lora_mix = 0, lora_decay = 0;

  std::string arch_name() const;  // "RWKV-7 (x070, Goose)"
};

// Throws aviary::Error naming the file and the missing or contradicting tensor,
// or saying which architecture was recognised but is not supported.
ModelConfig detect_config(const Checkpoint& ckpt);

// Number of consecutive `blocks.N.` prefixes starting at 0.
int64_t count_layers(const Checkpoint& ckpt);

}  // namespace aviary
