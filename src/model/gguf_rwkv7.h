// RWKV-7 in llama.cpp's GGUF layout (architecture "rwkv7") <-> the official
// x070 checkpoint layout the model loader reads. docs/gguf.md has the full
// name and shape table; in short, llama.cpp
//  * renames everything (emb.weight -> token_embd.weight, blocks.N.att.key ->
//    blk.N.time_mix_key, ...) and stores shapes reversed (ggml's ne),
//  * fuses x_r, x_w, x_k, x_v, x_a, x_g into time_mix_lerp_fused [6,1,1,C],
//  * stores the LoRA factors w1/w2, a1/a2, v1/v2, g1/g2 transposed,
//  * flattens r_k [H,N] to [C] and squeezes the [1,1,C] vectors to [C],
//  * drops layer 0's v0/v1/v2 (unused by the official model) and puts copies
//    of a0/a1/a2 in their place, because it wants the tensors in every layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "text/world_vocab.h"
#include "util/dtype.h"

namespace aviary {

inline constexpr const char* kRwkv7GgufArch = "rwkv7";

// A GGUF checkpoint whose general.architecture is "rwkv7".
bool is_rwkv7_gguf(const Checkpoint& ckpt);

// The tensors of a llama.cpp rwkv7 GGUF checkpoint under the official names
// and shapes. Big matrices (emb, head, att receptance/key/value/output, ffn
// key/value) and plain-float vectors point into the GGUF mapping in their
// stored type; the LoRA factors (transposed back) and anything small stored
// quantized are fp32 copies the view owns. Layer 0 gets no v0/v1/v2 (the
// official model never reads them). Throws aviary::Error naming the file and
// the missing or misshapen tensor.
Checkpoint official_rwkv7_view(const Checkpoint& gguf);

struct Rwkv7GgufReport {
  uint64_t file_bytes = 0;
  // Matrices written f16 instead of the requested type, because their rows
  // are not whole blocks of it.
  std::vector<std::string> f16_fallbacks;
  int64_t vocab_tokens = 0;   // vocabulary tokens embedded
  int64_t vocab_dropped = 0;  // entries with ids beyond the model's rows
};

// Writes `official` (an x070 checkpoint under the official names, or such a
// view) as a llama.cpp rwkv7 GGUF file. The embedding, head and the att/ffn
// key/value/receptance/output matrices get `matrix_type`; everything else is
// f32. `vocab` (World tokens by id) is embedded as llama.cpp expects; with an
// empty vocab the file has no tokenizer (Aviary loads it, llama.cpp does not).
// Throws "GGUF output supports RWKV-7 only" for other architectures.
Rwkv7GgufReport write_rwkv7_gguf(const Checkpoint& official, const std::string& path, DType matrix_type,
                                 const std::vector<VocabEntry>& vocab, const std::string& model_name = "");

}  // namespace aviary
