// AVX512-VNNI Q8_0 / Q4_0 products (ops/quant_dot_vnni.h). The functions carry
// their own target attribute, so this file builds with the project's plain
// x86-64 flags and runs only where the CPU reports the instructions.
// GCC 12 flags the undefined pass-through operand inside its own AVX-512
// conversion intrinsics as maybe-uninitialized (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "ops/quant_dot_vnni.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/feature_switch.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "util/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVIARY_HAVE_VNNI_BUILD 1
#else
#define AVIARY_HAVE_VNNI_BUILD 0
#endif

namespace aviary::ops::vnni {

namespace {

bool cpu_has_vnni() {
#if AVIARY_HAVE_VNNI_BUILD
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

FeatureSwitch g_switch(cpu_has_vnni(), "AVIARY_VNNI");

}  // namespace

bool enabled() { return g_switch.enabled(); }

void set_enabled(bool on) { g_switch.set_enabled(on); }

bool packs(DType t) { return (t == DType::Q8_0 || t == DType::Q4_0) && enabled(); }

namespace {
// Quant bytes of one block's row; a block's fp16 scales in a panel; and a
// panel block (its scales and quants).
constexpr size_t quant_bytes(DType t) { return t == DType::Q8_0 ? 32 : 16; }
constexpr size_t kScaleBytes = 2 * kPanelRows;
constexpr size_t panel_block_bytes(DType t) { return kScaleBytes + kPanelRows * quant_bytes(t); }
size_t panel_count(const Matrix& W) { return (size_t(W.rows) + kPanelRows - 1) / kPanelRows; }
// Bytes of one panel: its blocks in pairs (quant_dot_vnni.h).
constexpr size_t panel_bytes(size_t blocks, DType t) { return (blocks + 1) / 2 * 2 * panel_block_bytes(t); }
// Offsets in a panel of block b's pair, of its scales (both blocks' scales
// open the pair) and of its quants.
constexpr size_t pair_offset(size_t b, DType t) { return b / 2 * 2 * panel_block_bytes(t); }
constexpr size_t scales_offset(size_t b, DType t) { return pair_offset(b, t) + b % 2 * kScaleBytes; }
constexpr size_t quants_offset(size_t b, DType t) {
  return pair_offset(b, t) + 2 * kScaleBytes + b % 2 * kPanelRows * quant_bytes(t);
}
}  // namespace

size_t packed_bytes(const Matrix& W) {
  return panel_count(W) * panel_bytes(size_t(W.cols) / quant::kGroupElems, W.dtype);
}

void pack(const Matrix& W, uint8_t* dst) {
  const size_t blocks = size_t(W.cols) / quant::kGroupElems, qbytes = quant_bytes(W.dtype);
  const size_t block_bytes = dtype_block_bytes(W.dtype), qs = W.dtype == DType::Q8_0 ? quant::kQ8_0Qs : quant::kQ4_0Qs;
  const uint8_t flip = W.dtype == DType::Q8_0 ? 0x80 : 0x00;  // Q8_0: signed q -> unsigned q + 128
  std::memset(dst, 0, packed_bytes(W));  // padding rows: zero scale
  for (size_t p = 0; p < panel_count(W); ++p) {
    uint8_t* panel = dst + p * panel_bytes(blocks, W.dtype);
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* scales = panel + scales_offset(b, W.dtype);
      uint8_t* quants = panel + quants_offset(b, W.dtype);
      for (size_t r = 0; r < kPanelRows && p * kPanelRows + r < size_t(W.rows); ++r) {
        const uint8_t* blk = W.row_ptr(int64_t(p * kPanelRows + r)) + b * block_bytes;
        std::memcpy(scales + 2 * r, blk, 2);
        for (size_t j = 0; j < qbytes; ++j) quants[(j / 4) * 4 * kPanelRows + r * 4 + j % 4] = uint8_t(blk[qs + j] ^ flip);
      }
    }
  }
}

PanelActivations panel_activations(size_t values, bool decode) {
  struct Buffers {
    std::vector<int8_t> x8;
    std::vector<int32_t> corr;
    std::vector<float> xd;
  };
  constexpr size_t kRing = 4;
  thread_local Buffers ring[kRing];
  thread_local size_t next = 0;
  Buffers& b = ring[decode ? next++ % kRing : 0];
  if (b.x8.size() < values) {
    b.x8.resize(values);
    b.corr.resize(values / quant::kGroupElems);
    b.xd.resize(values / quant::kGroupElems);
  }
  return {b.x8.data(), b.corr.data(), b.xd.data()};
}

namespace {
int32_t weight_offset(DType t) { return t == DType::Q8_0 ? 128 : 8; }

// quantize_for_panels in plain loops: each block through
// reference::quantize_activations, then narrowed and summed.
void quantize_blocks_plain(const float* x, size_t blocks, int32_t offset, int8_t* x8, int32_t* corr, float* xd) {
  constexpr size_t kBlock = quant::kGroupElems;
  int16_t q[kBlock];
  for (size_t b = 0; b < blocks; ++b) {
    reference::quantize_activations(x + b * kBlock, 1, int64_t(kBlock), q, xd + b);
    int32_t sum = 0;
    for (size_t j = 0; j < kBlock; ++j) {
      x8[b * kBlock + j] = int8_t(q[j]);
      sum += q[j];
    }
    corr[b] = -offset * sum;
  }
}
}  // namespace

#if AVIARY_HAVE_VNNI_BUILD

#define AVIARY_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))
#define AVIARY_VNNI_FN AVIARY_VNNI_TARGET __attribute__((always_inline)) inline

namespace {

constexpr size_t kBlock = quant::kGroupElems;

// Four activation bytes in every lane, straight from memory: vpbroadcastd
// (or vpdpbusd's embedded broadcast) is a load, while bytes gathered through a
// general register cost a vector ALU uop each, as many as the products.
AVIARY_VNNI_FN __m512i broadcast4(const int8_t* p) { return _mm512_broadcastd_epi32(_mm_loadu_si32(p)); }

// Panels (quant_dot_vnni.h): kP panels x kT activation rows. Per block, each
// activation row's integer dot products come from 8 vpdpbusd into two
// accumulators (two short dependency chains), then one fp32 MulAdd per row.
template <DType kType, size_t kP, size_t kT>
AVIARY_VNNI_FN void panel_tile(const uint8_t* w, size_t panel_stride, const int8_t* x8, const int32_t* corr,
                               const float* xd, size_t in, size_t blocks, float* y, size_t y_stride, size_t valid) {
  __m512 acc[kP][kT];
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kT; ++c) acc[p][c] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    for (size_t p = 0; p < kP; ++p) {
      const uint8_t* panel = w + p * panel_stride;
      const __m512 dw = _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + scales_offset(b, kType))));
      const uint8_t* q = panel + quants_offset(b, kType);
      __m512i wv[8];
      if constexpr (kType == DType::Q8_0) {
        for (size_t k = 0; k < 8; ++k) wv[k] = _mm512_loadu_si512(q + 64 * k);
      } else {
        const __m512i mask = _mm512_set1_epi8(0x0F);
        for (size_t m = 0; m < 4; ++m) {
          const __m512i v = _mm512_loadu_si512(q + 64 * m);
          wv[m] = _mm512_and_si512(v, mask);
          wv[m + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
        }
      }
      for (size_t c = 0; c < kT; ++c) {
        const int8_t* xb = x8 + c * in + b * quant::kGroupElems;
        __m512i even = _mm512_set1_epi32(corr[c * blocks + b]), odd = _mm512_setzero_si512();
        for (size_t k = 0; k < 8; k += 2) {
          even = _mm512_dpbusd_epi32(even, wv[k], broadcast4(xb + 4 * k));
          odd = _mm512_dpbusd_epi32(odd, wv[k + 1], broadcast4(xb + 4 * k + 4));
        }
        const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xd[c * blocks + b]));
        acc[p][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even, odd)), scale, acc[p][c]);
      }
    }
  }
  for (size_t p = 0; p < kP; ++p) {
    const size_t lanes = std::min(kPanelRows, valid - std::min(valid, p * kPanelRows));
    const __mmask16 m = lanes >= kPanelRows ? __mmask16(0xFFFF) : __mmask16((1u << lanes) - 1);
    for (size_t c = 0; c < kT; ++c) _mm512_mask_storeu_ps(y + c * y_stride + p * kPanelRows, m, acc[p][c]);
  }
}

template <DType kType>
AVIARY_VNNI_TARGET void panels(
    const int8_t* x8, const int32_t* corr, const float* xd, size_t T, const uint8_t* data, size_t in, size_t out,
    size_t p0, size_t p1, float* y) {
  const size_t blocks = in / kBlock, stride = panel_bytes(blocks, kType);
  // Rows of output still valid from panel p on (the last panel may be partial).
  auto valid = [&](size_t p) { return out - p * kPanelRows; };
  // 16 activation rows a tile: 16 accumulators + 8 weight vectors fit the 32
  // registers (GEMM 2048 x 2048 x 64: 8 rows 460, 12 rows 515, 16 rows 525 GFLOP/s).
  constexpr size_t kT = 16;
  size_t p = p0;
  if (T == 1) {  // one panel at a time: measured faster than two or four (tg64 +14-20% at 0.4B/1.5B q4_0)
    for (; p < p1; ++p)
      panel_tile<kType, 1, 1>(data + p * stride, stride, x8, corr, xd, in, blocks, y + p * kPanelRows, out, valid(p));
    return;
  }
  // Activation rows in chunks that stay in L2 while the panels pass over them.
  const size_t t_chunk = std::max<size_t>(kT, (size_t(1) << 17) / in / kT * kT);
  for (size_t t0 = 0; t0 < T; t0 += t_chunk) {
    const size_t tn = std::min(t_chunk, T - t0);
    for (p = p0; p < p1; ++p) {
      size_t t = t0;
      // Tiles of kRows activation rows while they last.
      auto tiles = [&](auto rows) AVIARY_VNNI_TARGET {
        constexpr size_t kRows = decltype(rows)::value;
        for (; t + kRows <= t0 + tn; t += kRows)
          panel_tile<kType, 1, kRows>(data + p * stride, stride, x8 + t * in, corr + t * blocks, xd + t * blocks, in,
                                      blocks, y + t * out + p * kPanelRows, out, valid(p));
      };
      tiles(std::integral_constant<size_t, kT>());
      // Leftover rows in smaller tiles: alone, a row waits on every vpdpbusd's latency.
      tiles(std::integral_constant<size_t, 8>());
      tiles(std::integral_constant<size_t, 4>());
      tiles(std::integral_constant<size_t, 2>());
      tiles(std::integral_constant<size_t, 1>());
    }
  }
}

// reference::quantize_activations' arithmetic, 16 values to a vector: max, one
// division, products and round-to-nearest-even conversions are exact IEEE
// operations, so the bytes are the same.
AVIARY_VNNI_TARGET void quantize_blocks_avx512(const float* x, size_t blocks, int32_t offset, int8_t* x8,
                                               int32_t* corr, float* xd) {
  for (size_t b = 0; b < blocks; ++b) {
    const __m512 lo = _mm512_loadu_ps(x + b * kBlock), hi = _mm512_loadu_ps(x + b * kBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float scale = amax / 127.f;
    const __m512 inv = _mm512_set1_ps(scale != 0.f ? 1.f / scale : 0.f);
    const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(x8 + b * kBlock), _mm512_cvtepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(x8 + b * kBlock + 16), _mm512_cvtepi32_epi8(qhi));
    corr[b] = -offset * _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
    xd[b] = f16_to_f32(f32_to_f16(scale));
  }
}
}  // namespace

void quantize_for_panels(const float* x, size_t T, size_t in, DType t, int8_t* x8, int32_t* corr, float* xd) {
  const size_t blocks = T * in / kBlock;
  if (enabled()) return quantize_blocks_avx512(x, blocks, weight_offset(t), x8, corr, xd);
  quantize_blocks_plain(x, blocks, weight_offset(t), x8, corr, xd);
}

void packed_rows(const int8_t* x8, const int32_t* corr, const float* xd, size_t T, const Matrix& W, size_t p0,
                 size_t p1, float* y) {
  const auto* data = static_cast<const uint8_t*>(W.packed);
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  if (W.dtype == DType::Q8_0) return panels<DType::Q8_0>(x8, corr, xd, T, data, in, out, p0, p1, y);
  return panels<DType::Q4_0>(x8, corr, xd, T, data, in, out, p0, p1, y);
}

#else

void quantize_for_panels(const float* x, size_t T, size_t in, DType t, int8_t* x8, int32_t* corr, float* xd) {
  quantize_blocks_plain(x, T * in / quant::kGroupElems, weight_offset(t), x8, corr, xd);
}

void packed_rows(const int8_t*, const int32_t*, const float*, size_t, const Matrix&, size_t, size_t, float*) {}

#endif

}  // namespace aviary::ops::vnni
