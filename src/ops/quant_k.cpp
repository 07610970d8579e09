// Reference quantizers and dequantizers of GGML's 256-value "K" super-blocks
// Q4_K, Q5_K and Q6_K (layouts in quant.h), following ggml's
// quantize_row_q*_K_ref step for step so the bytes agree: the searches round
// half to even (ggml's nearest_int) and keep ggml's fp32 operation order.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/quant_blocks.h"

namespace aviary::ops::quant {

namespace {

// Below this largest magnitude a group counts as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// ---- Q4_K and Q5_K: 8 sub-blocks of 32 with a 6-bit scale and min each ----

// Levels 0..nmax with x ~ scale * L - min_out, fitted to the weighted squared
// error: first the plain min..max grid, then nsteps + 1 slightly stretched
// grids, each refined by a weighted least-squares fit of scale and offset;
// the best one wins. Returns the scale; *min_out is the subtracted minimum
// (>= 0). This is ggml's make_qkx2_quants (squared-error variant), with its
// fp32 operation order kept so the results agree.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out, float rmin,
                    float rdelta, int nsteps) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::fill(L, L + n, uint8_t(0));
    *min_out = -lo;
    return 0.f;
  }
  auto quantize_at = [&](float iscale, int i) { return std::clamp(nearest_even(iscale * (x[i] - lo)), 0, nmax); };
  float iscale = float(nmax) / (hi - lo);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = uint8_t(quantize_at(iscale, i));
    const float diff = scale * float(L[i]) + lo - x[i];
    best_error += w[i] * (diff * diff);
  }
  // lo becomes the offset (<= 0) of the best fit so far: later grids start there.
  uint8_t trial[kGroupElems];
  for (int step = 0; step <= nsteps; ++step) {
    iscale = (rmin + rdelta * float(step) + float(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = quantize_at(iscale, i);
      trial[i] = uint8_t(l);
      const float wl = w[i] * float(l);
      sum_l += wl;
      sum_l2 += wl * float(l);
      sum_xl += wl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_offset = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_offset > 0) {
      this_offset = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * float(trial[i]) + this_offset - x[i];
      error += w[i] * (diff * diff);
    }
    if (error < best_error) {
      std::copy(trial, trial + n, L);
      best_error = error;
      scale = this_scale;
      lo = this_offset;
    }
  }
  *min_out = -lo;
  return scale;
}

void pack_q4k_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* scales) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = ls[j];
    scales[j + 4] = lm[j];
  }
  for (int j = 4; j < 8; ++j) {
    scales[j + 4] = uint8_t((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
    scales[j - 4] |= uint8_t((ls[j] >> 4) << 6);
    scales[j] |= uint8_t((lm[j] >> 4) << 6);
  }
}


// The search parameters of a type with levels 0..nmax: the stretched grids
// start at nmax + rmin and grow by 0.1 for nsteps steps (ggml's choices).
struct ScaleMinSearch {
  int nmax;
  float rmin;
  int nsteps;
};

// Levels L[0..256) of a Q4_K / Q5_K block and its d, dmin and packed
// scales (at blk + kQ4_KScales; Q5_K keeps them at the same offset).
void quantize_scale_min_block(const float* x, const ScaleMinSearch& search, uint8_t* L, uint8_t* blk) {
  float scales[8], mins[8], weights[kGroupElems];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + kGroupElems * j;
    // Errors weigh more on large values and on sub-blocks of large values.
    float sum_x2 = 0;
    for (int l = 0; l < kGroupElems; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / kGroupElems);
    for (int l = 0; l < kGroupElems; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(kGroupElems, search.nmax, xs, weights, L + kGroupElems * j, &mins[j], search.rmin, 0.1f,
                              search.nsteps);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  // Sub-block scales and mins as 6-bit multiples of the block's d and dmin.
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    // Wrapped to 8 bits before the clamp, as ggml does (it matters only for a negative fit).
    ls[j] = std::min<uint8_t>(63, uint8_t(nearest_even(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, uint8_t(nearest_even(inv_min * mins[j])));
  }
  uint8_t* packed = blk + kQ4_KScales;
  pack_q4k_scales(ls, lm, packed);
  write_u16(blk, f32_to_f16(max_scale / 63.f));
  write_u16(blk + kQ4_KDmin, f32_to_f16(max_min / 63.f));
  // Requantize against the stored (rounded) scales; a sub-block whose scale
  // rounded to zero keeps the levels of its fit.
  const float d = read_f16(blk), dmin = read_f16(blk + kQ4_KDmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    q4k_scale_min(packed, j, sc, m);
    const float ds = d * float(sc);
    if (ds == 0.f) continue;
    const float dm = dmin * float(m);
    for (int l = 0; l < kGroupElems; ++l)
      L[kGroupElems * j + l] = uint8_t(std::clamp(nearest_even((x[kGroupElems * j + l] + dm) / ds), 0, search.nmax));
  }
}

// ---- Q6_K: 16 groups of 16 with an 8-bit signed scale each ------------------

// Levels L[i] = l + nmax, l in [-nmax, nmax), with x ~ scale * l, fitted to
// the squared error weighted by x^2: the grid putting the value of largest
// magnitude at -nmax, then 18 grids stretched by -0.9 .. 0.9 levels, each
// refined by a least-squares scale; the best one wins. Returns the scale
// (0 for an all-zero group, whose levels are 0). ggml's make_qx_quants
// (rmse_type 1, no importance weights), fp32 operation order kept.
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.f;
  }
  auto level_at = [&](float iscale, int i) { return std::clamp(nearest_even(iscale * x[i]), -nmax, nmax - 1); };
  // Weighted sums of x*l and l*l for the grid iscale (weights x^2).
  auto sums = [&](float iscale, float& sum_lx, float& sum_l2) {
    sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = float(level_at(iscale, i));
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
  };
  auto keep_levels = [&](float iscale) {
    for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + level_at(iscale, i));
  };
  float iscale = -float(nmax) / max;
  float sum_lx, sum_l2;
  sums(iscale, sum_lx, sum_l2);
  keep_levels(iscale);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.f;
  float best = scale * sum_lx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(step)) / max;
    sums(iscale, sum_lx, sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      keep_levels(iscale);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

}  // namespace

void quantize_q4_k(const float* x, uint8_t* blk) {
  uint8_t L[256];
  quantize_scale_min_block(x, {15, -1.f, 20}, L, blk);
  uint8_t* qs = blk + kQ4_KQs;
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) qs[32 * p + l] = uint8_t(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
}

void dequantize_q4_k(const uint8_t* blk, float* y) {
  const float d = read_f16(blk), dmin = read_f16(blk + kQ4_KDmin);
  const uint8_t* qs = blk + kQ4_KQs;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    q4k_scale_min(blk + kQ4_KScales, j, sc, m);
    const float ds = d * float(sc), dm = dmin * float(m);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    for (int l = 0; l < 32; ++l) y[32 * j + l] = ds * float((q[l] >> shift) & 0xF) - dm;
  }
}

void quantize_q5_k(const float* x, uint8_t* blk) {
  uint8_t L[256];
  quantize_scale_min_block(x, {31, -0.5f, 15}, L, blk);
  // Low 4 bits as in Q4_K; bit 4 of value l of sub-block j in bit j of qh[l].
  uint8_t* qh = blk + kQ5_KQh;
  uint8_t* qs = blk + kQ5_KQs;
  std::memset(qh, 0, 32);
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * p + l], hi = L[64 * p + 32 + l];
      qs[32 * p + l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
      qh[l] |= uint8_t(((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
    }
}

void dequantize_q5_k(const uint8_t* blk, float* y) {
  const float d = read_f16(blk), dmin = read_f16(blk + kQ5_KDmin);
  const uint8_t* qh = blk + kQ5_KQh;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    q4k_scale_min(blk + kQ5_KScales, j, sc, m);
    const float ds = d * float(sc), dm = dmin * float(m);
    const uint8_t* q = blk + kQ5_KQs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      const int level = ((q[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = ds * float(level) - dm;
    }
  }
}

void quantize_q6_k(const float* x, uint8_t* blk) {
  int8_t L[256];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int g = 0; g < 16; ++g) {
    scales[g] = fit_symmetric_scale(16, 32, x + 16 * g, L + 16 * g);
    if (std::fabs(scales[g]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[g]);
      max_scale = scales[g];
    }
  }
  std::memset(blk, 0, 210);
  if (max_abs_scale < kGroupMaxEps) return;  // all zero: d = 0, every byte 0
  // Group scales as 8-bit multiples of d; the largest maps to -128 (127 on overflow).
  const float iscale = -128.f / max_scale;
  write_u16(blk + kQ6_KD, f32_to_f16(1 / iscale));
  int8_t* group_scale = reinterpret_cast<int8_t*>(blk + kQ6_KScales);
  for (int g = 0; g < 16; ++g) group_scale[g] = int8_t(std::clamp(nearest_even(iscale * scales[g]), -128, 127));
  // Requantize against the stored scales; a group whose scale is zero keeps the levels of its fit.
  const float d = read_f16(blk + kQ6_KD);
  for (int g = 0; g < 16; ++g) {
    const float dg = d * float(group_scale[g]);
    if (dg == 0.f) continue;
    for (int i = 0; i < 16; ++i) L[16 * g + i] = int8_t(std::clamp(nearest_even(x[16 * g + i] / dg), -32, 31) + 32);
  }
  for (int h = 0; h < 2; ++h) {
    uint8_t* ql = blk + kQ6_KQl + 64 * h;
    uint8_t* qh = blk + kQ6_KQh + 32 * h;
    const int8_t* Lh = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[l + 32] = uint8_t((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
}

void dequantize_q6_k(const uint8_t* blk, float* y) {
  const float d = read_f16(blk + kQ6_KD);
  for (int g = 0; g < 8; ++g) {
    const Q6KGroup q = q6k_group(blk, g);
    for (int l = 0; l < 32; ++l) {
      const int level = ((q.ql[l] >> q.ql_shift) & 0xF) | (((q.qh[l] >> q.qh_shift) & 3) << 4);
      const float dg = d * float(l < 16 ? q.scale_lo : q.scale_hi);
      y[32 * g + l] = dg * float(level - 32);
    }
  }
}

}  // namespace aviary::ops::quant
