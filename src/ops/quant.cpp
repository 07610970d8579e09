// Reference quantizers and dequantizers of the GGML block formats (see quant.h).
// The rounding rules are ggml's: Q8_0 rounds half away from zero (roundf),
// Q4_0 truncates x/d + 8.5 towards zero, Q4_K rounds half to even (ggml's
// nearest_int adds 1.5 * 2^23, which is what nearbyint does in the default
// rounding mode). Scales are computed in fp32 and only stored as fp16.
#include "ops/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "util/error.h"

namespace aviary::ops {

using quant::kGroupElems;

void check_whole_blocks(DType t, int64_t n, const char* what) {
  const int64_t block = dtype_block_elems(t);
  if (n < 0 || n % block != 0)
    throw Error(std::string(what) + ": " + std::to_string(n) + " values are not a whole number of " +
                std::string(dtype_name(t)) + " blocks of " + std::to_string(block));
}

void check_not_quantized(DType t, const char* what) {
  if (dtype_is_quantized(t))
    throw Error(std::string(what) + ": weights stored as " + std::string(dtype_name(t)) +
                " are not supported (only f32, f16 and bf16)");
}

namespace {

void write_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v & 0xff);
  p[1] = uint8_t(v >> 8);
}

float read_f16(const uint8_t* p) { return f16_to_f32(quant::read_u16(p)); }

void check_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error("quantize_row: value " + std::to_string(i) + " is not finite (" + std::to_string(x[i]) + ")");
}

// v converted to an int in [lo, hi]: out-of-range values (possible only with
// degenerate scales, such as a subnormal d whose inverse overflows) are clamped
// instead of being undefined behaviour; NaN becomes 0 clamped.
int clamped_int(float v, int lo, int hi) {
  if (std::isnan(v)) return std::clamp(0, lo, hi);
  if (v <= float(lo)) return lo;
  if (v >= float(hi)) return hi;
  return int(v);  // truncates, as a C cast does
}

// Round half to even: ggml's nearest_int.
int nearest_even(float v) { return clamped_int(std::nearbyint(v), -4194303, 4194303); }

// ---- Q8_0 -------------------------------------------------------------------

void quantize_q8_0(const float* x, uint8_t* blk) {
  float amax = 0.f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  for (int j = 0; j < 32; ++j) blk[quant::kQ8_0Qs + j] = uint8_t(int8_t(clamped_int(std::round(x[j] * id), -128, 127)));
}

void dequantize_q8_0(const uint8_t* blk, float* y) {
  const float d = read_f16(blk);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(blk[quant::kQ8_0Qs + j])) * d;
}

// ---- Q4_0 -------------------------------------------------------------------

void quantize_q4_0(const float* x, uint8_t* blk) {
  // The scale maps the value of largest magnitude (the first one, on ties) to -8.
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const float d = max / -8;
  const float id = d != 0.f ? 1.0f / d : 0.f;
  write_u16(blk, f32_to_f16(d));
  auto level = [&](float v) { return std::min(15, clamped_int(v * id + 8.5f, 0, 127)); };
  for (int j = 0; j < 16; ++j)
    blk[quant::kQ4_0Qs + j] = uint8_t(level(x[j]) | (level(x[j + 16]) << 4));
}

void dequantize_q4_0(const uint8_t* blk, float* y) {
  const float d = read_f16(blk);
  const uint8_t* qs = blk + quant::kQ4_0Qs;
  for (int j = 0; j < 16; ++j) {
    y[j] = float((qs[j] & 0xF) - 8) * d;
    y[j + 16] = float((qs[j] >> 4) - 8) * d;
  }
}

// ---- Q4_K -------------------------------------------------------------------

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

void quantize_q4_k(const float* x, uint8_t* blk) {
  uint8_t L[256];
  float scales[8], mins[8], weights[kGroupElems];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + kGroupElems * j;
    // Errors weigh more on large values and on sub-blocks of large values.
    float sum_x2 = 0;
    for (int l = 0; l < kGroupElems; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / kGroupElems);
    for (int l = 0; l < kGroupElems; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = fit_scale_min(kGroupElems, 15, xs, weights, L + kGroupElems * j, &mins[j], -1.f, 0.1f, 20);
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
  uint8_t* packed = blk + quant::kQ4_KScales;
  pack_q4k_scales(ls, lm, packed);
  write_u16(blk, f32_to_f16(max_scale / 63.f));
  write_u16(blk + quant::kQ4_KDmin, f32_to_f16(max_min / 63.f));
  // Requantize against the stored (rounded) scales; a sub-block whose scale
  // rounded to zero keeps the levels of its fit.
  const float d = read_f16(blk), dmin = read_f16(blk + quant::kQ4_KDmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    quant::q4k_scale_min(packed, j, sc, m);
    const float ds = d * float(sc);
    if (ds == 0.f) continue;
    const float dm = dmin * float(m);
    for (int l = 0; l < kGroupElems; ++l)
      L[kGroupElems * j + l] = uint8_t(std::clamp(nearest_even((x[kGroupElems * j + l] + dm) / ds), 0, 15));
  }
  uint8_t* qs = blk + quant::kQ4_KQs;
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) qs[32 * p + l] = uint8_t(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
}

void dequantize_q4_k(const uint8_t* blk, float* y) {
  const float d = read_f16(blk), dmin = read_f16(blk + quant::kQ4_KDmin);
  const uint8_t* qs = blk + quant::kQ4_KQs;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    quant::q4k_scale_min(blk + quant::kQ4_KScales, j, sc, m);
    const float ds = d * float(sc), dm = dmin * float(m);
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    for (int l = 0; l < 32; ++l) y[32 * j + l] = ds * float((q[l] >> shift) & 0xF) - dm;
  }
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, void* out) {
  check_whole_blocks(t, n, "quantize_row");
  check_finite(x, n);
  auto* dst = static_cast<uint8_t*>(out);
  const int64_t be = dtype_block_elems(t);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t b = 0; b < n / be; ++b) {
    const float* xb = x + b * be;
    uint8_t* ob = dst + size_t(b) * bb;
    switch (t) {
      case DType::F32: std::memcpy(ob, xb, 4); break;
      case DType::F16: write_u16(ob, f32_to_f16(*xb)); break;
      case DType::BF16: write_u16(ob, f32_to_bf16(*xb)); break;
      case DType::Q8_0: quantize_q8_0(xb, ob); break;
      case DType::Q4_0: quantize_q4_0(xb, ob); break;
      case DType::Q4_K: quantize_q4_k(xb, ob); break;
    }
  }
}

void dequantize_row(DType t, const void* src, int64_t n, float* out) {
  check_whole_blocks(t, n, "dequantize_row");
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32: std::memcpy(out, s, size_t(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = read_f16(s + 2 * i);
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(quant::read_u16(s + 2 * i));
      return;
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: break;
  }
  const int64_t be = dtype_block_elems(t);
  const size_t bb = dtype_block_bytes(t);
  for (int64_t b = 0; b < n / be; ++b) {
    const uint8_t* blk = s + size_t(b) * bb;
    float* yb = out + b * be;
    if (t == DType::Q8_0) dequantize_q8_0(blk, yb);
    else if (t == DType::Q4_0) dequantize_q4_0(blk, yb);
    else dequantize_q4_k(blk, yb);
  }
}

}  // namespace aviary::ops
