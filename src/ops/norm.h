// Normalisations used by every RWKV generation, in fp32. LayerNorm (and so
// GroupNorm) runs on the SIMD target chosen at run time (ops/simd.h).
#pragma once

#include <cstdint>

namespace aviary::ops {

// out = (x - mean) / sqrt(var + eps) * w + b over n elements (biased variance,
// as torch.nn.functional.layer_norm). `out` may alias `x`.
void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out);

// GroupNorm of one vector of groups*group_size elements: each group normalised
// on its own, then the per-channel affine w, b. `out` may alias `x`.
void group_norm(const float* x, int64_t groups, int64_t group_size, const float* w, const float* b,
                float eps, float* out);

// Each group of group_size elements divided by max(||group||_2, eps), as
// torch.nn.functional.normalize(dim=-1). `out` may alias `x`.
void l2_normalize_groups(const float* x, int64_t groups, int64_t group_size, float eps, float* out);

namespace reference {
// layer_norm in plain loops (statistics in double, like the SIMD variants,
// summed in another order).
void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out);
}  // namespace reference

}  // namespace aviary::ops
