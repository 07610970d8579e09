// Random-weight RWKV-7 checkpoints with the official dimensions of each
// released size: for benchmarks and memory tests of models too large to
// ship, where only the shapes (and finite outputs) matter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/checkpoint_writer.h"
#include "text/world_vocab.h"
#include "util/dtype.h"

namespace aviary {

struct SynthShape {
  std::string name;  // "0.1B", ...
  int64_t n_layer = 0, n_embd = 0;
  int64_t lora_w = 0, lora_a = 0, lora_v = 0, lora_g = 0;  // decay, in-context rate, value residual, gate
  // Every released RWKV-7 size shares these.
  static constexpr int64_t kHeadSize = 64;
  static constexpr int64_t kVocab = 65536;
  int64_t ffn_dim() const { return 4 * n_embd; }
};

// The released sizes: 0.1B, 0.4B, 1.5B, 2.9B, 7.2B.
const std::vector<SynthShape>& synth_shapes();

// Throws aviary::Error listing the known names.
const SynthShape& synth_shape(std::string_view name);

// The LoRA-rank suggestions of the official training code (RWKV-LM
// RWKV-v7/train_temp, the version the G1 models were trained with):
// max(32, round(k * C^e / 32) * 32) with (k, e) = (1.8, 0.5) for decay and
// in-context rate, (1.3, 0.5) for value residual, (0.6, 0.8) for the gate.
// The released 0.4B deviates: its gate rank is 128, not the formula's 160.
enum class LoraKind { Decay, InContextRate, ValueResidual, Gate };
int64_t official_lora_rank(LoraKind kind, int64_t n_embd);

struct SynthOptions {
  // F32, F16 or BF16; a GGUF file may also have its big matrices in Q8_0,
  // Q4_0 or Q4_K (the rest stays f32, as llama.cpp's converter does).
  DType dtype = DType::BF16;
  uint64_t seed = 0;
  int64_t layers = 0;  // > 0 overrides the shape's layer count (for quick tests)
  // GGUF only: the World vocabulary to embed (llama.cpp needs one to load
  // the file; Aviary does not).
  std::vector<VocabEntry> vocab;
};

// The tensors in official order, with the bytes they point at (for a writer
// of another format; write_synth_rwkv7 uses write_pth).
struct SynthTensors {
  std::vector<std::vector<uint8_t>> buffers;  // owned bytes, one per tensor
  std::vector<TensorData> tensors;            // point into `buffers`
};
SynthTensors make_synth_rwkv7(const SynthShape& shape, const SynthOptions& options = {});

// Writes the checkpoint as a torch.save `.pth` (key names, shapes and order
// of the official training code, layer 0's unused v0/v1/v2 included), or,
// for a `.gguf` path, in llama.cpp's rwkv7 GGUF layout (via a temporary
// .pth beside it, converted by write_rwkv7_gguf).
// Values are random with scales that keep the forward pass finite; the same
// seed gives the same file whatever the thread count. Holds the whole model
// in memory while writing (7.2B in bf16 needs about 15 GB). Throws
// aviary::Error for a quantized dtype in a .pth, a path that is not
// .pth/.pt/.gguf, or a write failure.
void write_synth_rwkv7(const std::string& path, const SynthShape& shape, const SynthOptions& options = {});

}  // namespace aviary
