// Building blocks shared by every RWKV generation. They work on T tokens at
// once ([T, C] row-major activations): T = 1 is the RNN step, T > 1 a
// sequence-mode chunk. A version's forward pass is composed from these and
// differs only where its math differs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/matrix.h"

namespace aviary {

// A LayerNorm's fp32 weight and bias.
struct Norm {
  std::vector<float> w, b;
};

constexpr float kLayerNormEps = 1e-5f;  // torch.nn.functional.layer_norm default

// out[t] = LayerNorm(x[t]) for T rows of n. `out` may alias `x`.
void layer_norm_rows(const float* x, int64_t T, int64_t n, const Norm& norm, float* out);

// Embedding rows for `tokens`, then ln0 (the official loader folds ln0 into
// the embedding; doing it per token is the same fp32 math without a copy).
void embed_tokens(std::span<const int32_t> tokens, const ops::Matrix& emb, const Norm& ln0, float* x);

// Token shift over a chunk: prev[t] = x[t-1], prev[0] = the state's last
// input; then the state keeps x[T-1] for the next call.
void shift_tokens(const float* x, int64_t T, int64_t C, std::span<float> state_prev, float* prev);

// Logits of the selected rows: ln_out, then the head. `rows` are indices into x.
void head_logits(const float* x, int64_t C, std::span<const int64_t> rows, const Norm& ln_out,
                 const ops::Matrix& head, float* logits, std::vector<float>& scratch);

// Scratch buffers reused across calls: `get(i, n)` returns buffer i with at
// least n floats, growing it only when a larger chunk arrives.
class Workspace {
 public:
  float* get(size_t slot, size_t n);

 private:
  std::vector<std::vector<float>> bufs_;
};

}  // namespace aviary
