// AVX512-BF16 prefill products on bf16 float panels (ops/bf16_dot.h). The
// kernels carry their own target attribute, so this file builds with the
// project's plain x86-64 flags and runs only where the CPU reports the
// instructions (elsewhere panel_rows is never called).
// GCC 12 flags the undefined pass-through operand inside its own AVX-512
// intrinsics as maybe-uninitialized (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "ops/bf16_dot.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/feature_switch.h"
#include "ops/float_panels.h"
#include "util/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVIARY_HAVE_BF16_BUILD 1
#else
#define AVIARY_HAVE_BF16_BUILD 0
#endif

namespace aviary::ops::bf16dot {

namespace {

bool cpu_has_bf16_dot() {
#if AVIARY_HAVE_BF16_BUILD
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

FeatureSwitch g_switch(cpu_has_bf16_dot(), "AVIARY_BF16_DOT");

}  // namespace

bool enabled() { return g_switch.enabled(); }

void set_enabled(bool on) { g_switch.set_enabled(on); }

void reference_linear(const float* x, int64_t T, const Matrix& W, float* y) {
  const size_t in = size_t(W.cols);
  std::vector<float> w(in), xb(in);
  for (int64_t t = 0; t < T; ++t) {
    for (size_t i = 0; i < in; ++i) xb[i] = bf16_to_f32(f32_to_bf16(x[size_t(t) * in + i]));
    for (int64_t o = 0; o < W.rows; ++o) {
      convert_to_f32(W.row_ptr(o), W.dtype, W.cols, w.data());
      float acc = 0;
      for (size_t i = 0; i < in; i += 2) acc += w[i] * xb[i] + (i + 1 < in ? w[i + 1] * xb[i + 1] : 0.f);
      y[size_t(t * W.rows + o)] = acc;
    }
  }
}

#if AVIARY_HAVE_BF16_BUILD

#define AVIARY_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AVIARY_BF16_FN AVIARY_BF16_TARGET __attribute__((always_inline)) inline

namespace {

constexpr size_t kRows = float_panels::kRows;  // 32: two vectors of 16 fp32 lanes
constexpr size_t kTileRows = 12;                // 24 accumulators + 2 weight vectors in 32 registers

// One 32-bit pair of activations in every lane, straight from memory
// (vpbroadcastd is a load, not a vector ALU uop).
AVIARY_BF16_FN __m512bh broadcast_pair(const uint32_t* p) {
  return (__m512bh)_mm512_broadcastd_epi32(_mm_loadu_si32(p));
}

// Columns [0, n) of kC activation rows (`stride` apart) rounded to bf16 pairs
// and interleaved for a tile: dst[j * kC + c] = (bf16(x[c][2j]),
// bf16(x[c][2j + 1])), zero past n.
template <size_t kC>
AVIARY_BF16_FN void pair_rows(const float* x, size_t stride, size_t n, uint32_t* dst) {
  alignas(64) uint32_t tmp[16];
  const size_t pairs = (n + 1) / 2;
  for (size_t c = 0; c < kC; ++c) {
    const float* row = x + c * stride;
    for (size_t i = 0; i < n; i += 32) {
      const size_t left = std::min<size_t>(32, n - i);
      const __mmask16 m0 = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      const __mmask16 m1 = left >= 32 ? __mmask16(0xFFFF) : left > 16 ? __mmask16((1u << (left - 16)) - 1) : 0;
      const __m512 lo = _mm512_maskz_loadu_ps(m0, row + i), hi = _mm512_maskz_loadu_ps(m1, row + i + 16);
      _mm512_store_si512(tmp, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
      const size_t j0 = i / 2, jn = std::min<size_t>(16, pairs - j0);
      for (size_t l = 0; l < jn; ++l) dst[(j0 + l) * kC + c] = tmp[l];
    }
  }
}

AVIARY_BF16_FN __mmask16 lane_mask(size_t lanes) {
  return lanes >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << lanes) - 1);
}

// Two panel columns (32 bf16 each, rows in order) as the operands of
// vdpbf16ps: lane r of `lo` holds row r's pair (a, b), of `hi` row 16 + r's.
struct PairIndex {
  __m512i lo, hi;
};

AVIARY_BF16_FN PairIndex pair_index() {
  alignas(64) static constexpr uint16_t kLow[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
                                                    8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i lo = _mm512_load_si512(kLow);
  return {lo, _mm512_add_epi16(lo, _mm512_set1_epi16(16))};
}

// Stores the 32 lanes of one panel's output rows below `valid`.
AVIARY_BF16_FN void store_rows(float* y, const __m512 acc[2], size_t valid) {
  _mm512_mask_storeu_ps(y, lane_mask(std::min<size_t>(valid, 16)), acc[0]);
  _mm512_mask_storeu_ps(y + 16, lane_mask(valid > 16 ? valid - 16 : 0), acc[1]);
}

// kP panels (panel_stride apart) x kC activation rows (pairs interleaved by
// pair_rows): y[c * y_stride + p * 32 + r]. Each panel's columns are paired in
// registers, two permutes per column pair and panel.
template <size_t kP, size_t kC>
AVIARY_BF16_FN void dot_tile(const uint16_t* w, size_t panel_stride, const uint32_t* x, size_t in, float* y,
                             size_t y_stride, size_t valid) {
  const PairIndex idx = pair_index();
  __m512 acc[kP][kC][2];
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kC; ++c) acc[p][c][0] = acc[p][c][1] = _mm512_setzero_ps();
  for (size_t j = 0; j < (in + 1) / 2; ++j) {
    __m512bh w0[kP], w1[kP];
    for (size_t p = 0; p < kP; ++p) {
      const uint16_t* col = w + p * panel_stride + 2 * j * kRows;
      const __m512i a = _mm512_loadu_si512(col);
      const __m512i b = 2 * j + 1 < in ? _mm512_loadu_si512(col + kRows) : _mm512_setzero_si512();
      w0[p] = (__m512bh)_mm512_permutex2var_epi16(a, idx.lo, b);
      w1[p] = (__m512bh)_mm512_permutex2var_epi16(a, idx.hi, b);
    }
    for (size_t c = 0; c < kC; ++c) {
      const __m512bh xb = broadcast_pair(x + j * kC + c);
      for (size_t p = 0; p < kP; ++p) {
        acc[p][c][0] = _mm512_dpbf16_ps(acc[p][c][0], w0[p], xb);
        acc[p][c][1] = _mm512_dpbf16_ps(acc[p][c][1], w1[p], xb);
      }
    }
  }
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kC; ++c)
      if (valid > p * kRows) store_rows(y + c * y_stride + p * kRows, acc[p][c], valid - p * kRows);
}

// Calls f(std::integral_constant<size_t, kC>(), t) for the tiles covering
// rows [t0, t1): kTileRows while they last, then 8, 4, 2, 1 (a lone
// accumulator chain would wait on every vdpbf16ps's latency).
template <class F>
AVIARY_BF16_FN void for_each_tile(size_t t0, size_t t1, const F& f) {
  size_t t = t0;
  auto tiles = [&](auto rows) AVIARY_BF16_TARGET {
    for (; t + decltype(rows)::value <= t1; t += decltype(rows)::value) f(rows, t);
  };
  tiles(std::integral_constant<size_t, kTileRows>());
  tiles(std::integral_constant<size_t, 8>());
  tiles(std::integral_constant<size_t, 4>());
  tiles(std::integral_constant<size_t, 2>());
  tiles(std::integral_constant<size_t, 1>());
}

// Decode: the activation row's pairs times panels [p0, p1), four panels a
// tile (eight independent accumulator chains, four streams).
AVIARY_BF16_TARGET void decode_rows(const float* x, const uint16_t* panels, size_t in, size_t out, size_t p0,
                                    size_t p1, float* y) {
  thread_local std::vector<uint32_t> xp;
  const size_t stride = in * kRows;
  if (xp.size() < (in + 1) / 2) xp.resize((in + 1) / 2);
  pair_rows<1>(x, in, in, xp.data());
  size_t p = p0;
  for (; p + 4 <= p1; p += 4) dot_tile<4, 1>(panels + p * stride, stride, xp.data(), in, y + p * kRows, 0, out - p * kRows);
  for (; p < p1; ++p) dot_tile<1, 1>(panels + p * stride, stride, xp.data(), in, y + p * kRows, 0, out - p * kRows);
}

AVIARY_BF16_TARGET void rows_impl(const float* x, size_t T, const uint16_t* panels, size_t in, size_t out,
                                  size_t p0, size_t p1, float* y) {
  if (T == 1) return decode_rows(x, panels, in, out, p0, p1, y);
  const size_t stride = in * kRows, pairs = (in + 1) / 2;
  // Activation rows in chunks of ~512 KiB of pairs, which stay in L2 while
  // the panels pass over them (each panel from L2 once per tile).
  const size_t t_chunk = std::max(kTileRows, (size_t(1) << 17) / pairs / kTileRows * kTileRows);
  thread_local std::vector<uint32_t> xp;
  if (xp.size() < t_chunk * pairs) xp.resize(t_chunk * pairs);
  for (size_t t0 = 0; t0 < T; t0 += t_chunk) {
    const size_t t1 = std::min(T, t0 + t_chunk);
    uint32_t* dst = xp.data();
    for_each_tile(t0, t1, [&](auto rows, size_t t) AVIARY_BF16_TARGET {
      pair_rows<decltype(rows)::value>(x + t * in, in, in, dst);
      dst += rows * pairs;
    });
    for (size_t p = p0; p < p1; ++p) {
      const uint32_t* xr = xp.data();
      for_each_tile(t0, t1, [&](auto rows, size_t t) AVIARY_BF16_TARGET {
        dot_tile<1, decltype(rows)::value>(panels + p * stride, stride, xr, in, y + t * out + p * kRows, out,
                                           out - p * kRows);
        xr += rows * pairs;
      });
    }
  }
}

// The sparse decode tile: kP panels times the listed column pairs. A column
// whose activation is zero is not read (its weights are taken as zero: the
// same vdpbf16ps result as the dense tile, whose product there is zero).
template <size_t kP>
AVIARY_BF16_FN void sparse_tile(const uint16_t* w, size_t panel_stride, const uint32_t* cols, const uint32_t* xp,
                                size_t n, float* y, size_t valid) {
  alignas(64) static constexpr uint16_t kZeros[kRows] = {};
  const PairIndex idx = pair_index();
  __m512 acc[kP][2];
  for (size_t p = 0; p < kP; ++p) acc[p][0] = acc[p][1] = _mm512_setzero_ps();
  for (size_t k = 0; k < n; ++k) {
    // cols[k]: the pair's first column, bit 31 if it is zero, bit 30 if the second is.
    const size_t col = cols[k] & 0x3FFFFFFFu;
    const bool skip_a = cols[k] >> 31, skip_b = (cols[k] >> 30) & 1;
    const __m512bh xb = broadcast_pair(xp + k);
    for (size_t p = 0; p < kP; ++p) {
      const uint16_t* base = w + p * panel_stride + col * kRows;
      const __m512i a = _mm512_loadu_si512(skip_a ? kZeros : base);
      const __m512i b = _mm512_loadu_si512(skip_b ? kZeros : base + kRows);
      acc[p][0] = _mm512_dpbf16_ps(acc[p][0], (__m512bh)_mm512_permutex2var_epi16(a, idx.lo, b), xb);
      acc[p][1] = _mm512_dpbf16_ps(acc[p][1], (__m512bh)_mm512_permutex2var_epi16(a, idx.hi, b), xb);
    }
  }
  for (size_t p = 0; p < kP; ++p)
    if (valid > p * kRows) store_rows(y + p * kRows, acc[p], valid - p * kRows);
}

AVIARY_BF16_TARGET void sparse_impl(const uint32_t* cols, const uint32_t* xp, size_t n, const uint16_t* panels,
                                    size_t in, size_t out, size_t p0, size_t p1, float* y) {
  const size_t stride = in * kRows;
  size_t p = p0;
  for (; p + 4 <= p1; p += 4) sparse_tile<4>(panels + p * stride, stride, cols, xp, n, y + p * kRows, out - p * kRows);
  for (; p < p1; ++p) sparse_tile<1>(panels + p * stride, stride, cols, xp, n, y + p * kRows, out - p * kRows);
}

}  // namespace

void panel_rows(const float* x, size_t T, const uint16_t* panels, size_t in, size_t out, size_t p0, size_t p1,
                float* y) {
  rows_impl(x, T, panels, in, out, p0, p1, y);
}

AVIARY_BF16_TARGET size_t sparse_pairs(const float* h, size_t in, uint32_t* cols, uint32_t* xp) {
  pair_rows<1>(h, in, in, xp);
  size_t n = 0;
  for (size_t j = 0; j < (in + 1) / 2; ++j) {
    // Branch-free: zeros fall at random, a branch would mispredict often.
    const bool zero_a = h[2 * j] == 0.f, zero_b = 2 * j + 1 >= in || h[2 * j + 1] == 0.f;
    cols[n] = uint32_t(2 * j) | uint32_t(zero_a) << 31 | uint32_t(zero_b) << 30;
    xp[n] = xp[j];
    n += !(zero_a && zero_b);
  }
  return n;
}

void sparse_panel_rows(const uint32_t* cols, const uint32_t* xp, size_t n, const uint16_t* panels, size_t in,
                       size_t out, size_t p0, size_t p1, float* y) {
  sparse_impl(cols, xp, n, panels, in, out, p0, p1, y);
}

#else

void panel_rows(const float*, size_t, const uint16_t*, size_t, size_t, size_t, size_t, float*) {}
size_t sparse_pairs(const float*, size_t, uint32_t*, uint32_t*) { return 0; }
void sparse_panel_rows(const uint32_t*, const uint32_t*, size_t, const uint16_t*, size_t, size_t, size_t, size_t,
                       float*) {}

#endif

}  // namespace aviary::ops::bf16dot
