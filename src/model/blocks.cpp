#include "model/blocks.h"

#include <algorithm>

#include "ops/linear.h"
#include "ops/norm.h"

namespace aviary {

void layer_norm_rows(const float* x, int64_t T, int64_t n, const Norm& norm, float* out) {
  for (int64_t t = 0; t < T; ++t)
    ops::layer_norm(x + t * n, n, norm.w.data(), norm.b.data(), kLayerNormEps, out + t * n);
}

void embed_tokens(std::span<const int32_t> tokens, const ops::Matrix& emb, const Norm& ln0, float* x) {
  const int64_t C = emb.cols;
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = x + int64_t(t) * C;
    ops::convert_to_f32(emb.row_ptr(tokens[t]), emb.dtype, C, row);
    ops::layer_norm(row, C, ln0.w.data(), ln0.b.data(), kLayerNormEps, row);
  }
}

void shift_tokens(const float* x, int64_t T, int64_t C, std::span<float> state_prev, float* prev) {
  std::copy_n(state_prev.data(), C, prev);
  std::copy_n(x, (T - 1) * C, prev + C);
  std::copy_n(x + (T - 1) * C, C, state_prev.data());
}

void head_logits(const float* x, int64_t C, std::span<const int64_t> rows, const Norm& ln_out,
                 const ops::Matrix& head, float* logits, std::vector<float>& scratch) {
  scratch.resize(rows.size() * size_t(C));
  for (size_t i = 0; i < rows.size(); ++i)
    ops::layer_norm(x + rows[i] * C, C, ln_out.w.data(), ln_out.b.data(), kLayerNormEps,
                    scratch.data() + i * size_t(C));
  ops::linear(scratch.data(), int64_t(rows.size()), head, logits);
}

float* Workspace::get(size_t slot, size_t n) {
  if (bufs_.size() <= slot) bufs_.resize(slot + 1);
  if (bufs_[slot].size() < n) bufs_[slot].resize(n);
  return bufs_[slot].data();
}

}  // namespace aviary
