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
#include <atomic>
#include <cstring>
#include <cstdlib>
#include <string_view>

#include "ops/quant.h"

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

bool initially_enabled() {
  const char* v = std::getenv("AVIARY_VNNI");
  return cpu_has_vnni() && !(v && std::string_view(v) == "0");
}

std::atomic<bool> g_enabled{initially_enabled()};

}  // namespace

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void set_enabled(bool on) { g_enabled.store(on && cpu_has_vnni(), std::memory_order_relaxed); }

bool packs(DType t) { return (t == DType::Q8_0 || t == DType::Q4_0) && enabled(); }

namespace {
// Quant bytes of one block, and of one panel block (scales first).
size_t quant_bytes(DType t) { return t == DType::Q8_0 ? 32 : 16; }
size_t panel_block_bytes(DType t) { return kPanelRows * (2 + quant_bytes(t)); }
size_t panel_count(const Matrix& W) { return (size_t(W.rows) + kPanelRows - 1) / kPanelRows; }
}  // namespace

size_t packed_bytes(const Matrix& W) {
  return panel_count(W) * size_t(W.cols) / quant::kGroupElems * panel_block_bytes(W.dtype);
}

void pack(const Matrix& W, uint8_t* dst) {
  const size_t blocks = size_t(W.cols) / quant::kGroupElems, qbytes = quant_bytes(W.dtype);
  const size_t block_bytes = dtype_block_bytes(W.dtype), qs = W.dtype == DType::Q8_0 ? quant::kQ8_0Qs : quant::kQ4_0Qs;
  const uint8_t flip = W.dtype == DType::Q8_0 ? 0x80 : 0x00;  // Q8_0: signed q -> unsigned q + 128
  std::memset(dst, 0, packed_bytes(W));  // padding rows: zero scale
  for (size_t p = 0; p < panel_count(W); ++p)
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* out = dst + (p * blocks + b) * panel_block_bytes(W.dtype);
      for (size_t r = 0; r < kPanelRows && p * kPanelRows + r < size_t(W.rows); ++r) {
        const uint8_t* blk = W.row_ptr(int64_t(p * kPanelRows + r)) + b * block_bytes;
        std::memcpy(out + 2 * r, blk, 2);
        for (size_t j = 0; j < qbytes; ++j)
          out[2 * kPanelRows + (j / 4) * 4 * kPanelRows + r * 4 + j % 4] = uint8_t(blk[qs + j] ^ flip);
      }
    }
}

void narrow_activations(const int16_t* xq, size_t T, size_t in, DType t, int8_t* x8, int32_t* corr) {
  const int32_t offset = t == DType::Q8_0 ? 128 : 8;
  for (size_t b = 0; b < T * in / quant::kGroupElems; ++b) {
    int32_t sum = 0;
    for (size_t j = 0; j < quant::kGroupElems; ++j) {
      const int16_t v = xq[b * quant::kGroupElems + j];
      x8[b * quant::kGroupElems + j] = int8_t(v);
      sum += v;
    }
    corr[b] = -offset * sum;
  }
}

#if AVIARY_HAVE_VNNI_BUILD

#define AVIARY_VNNI_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"), always_inline)) inline

namespace {

constexpr size_t kBlock = quant::kGroupElems;

// Activation blocks b and b + 1 of one row (b + 1 may be absent: zeros).
struct XPair {
  __m512i s8;  // 64 signed bytes
  __m512 d;    // lanes 0-7: d_x of block b, 8-15: of block b + 1
};

AVIARY_VNNI_FN XPair load_x(const int16_t* q, const float* d, size_t b, bool two) {
  const __m256i lo = _mm512_cvtepi16_epi8(_mm512_loadu_si512(q + b * kBlock));
  const __m256i hi = two ? _mm512_cvtepi16_epi8(_mm512_loadu_si512(q + (b + 1) * kBlock)) : _mm256_setzero_si256();
  return {_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
          _mm512_insertf32x8(_mm512_set1_ps(d[b]), _mm256_set1_ps(two ? d[b + 1] : 0.f), 1)};
}

// d_w of blocks at p0 and p1 (fp16, little endian) in the two halves.
AVIARY_VNNI_FN __m512 load_dw(const uint8_t* p0, const uint8_t* p1) {
  const short h0 = short(quant::read_u16(p0)), h1 = p1 ? short(quant::read_u16(p1)) : short(0);
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(h0)), _mm_set1_epi16(h1), 1));
}

// Q8_0: weights signed, so the activations go in as unsigned x + 128 and the
// lanes start from -128 * (sum of their four weights).
struct Q8 {
  static constexpr size_t kBytes = 34;
  __m512i w, start;
  __m512 dw;
  AVIARY_VNNI_FN void load(const uint8_t* row, size_t b, bool two) {
    const uint8_t* b0 = row + b * kBytes;
    const uint8_t* b1 = two ? b0 + kBytes : nullptr;
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + quant::kQ8_0Qs));
    const __m256i hi = two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + quant::kQ8_0Qs)) : _mm256_setzero_si256();
    w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    start = _mm512_sub_epi32(_mm512_setzero_si512(),
                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(char(0x80)), w));
    dw = load_dw(b0, b1);
  }
  AVIARY_VNNI_FN static __m512i prepare_x(__m512i s8) { return _mm512_xor_si512(s8, _mm512_set1_epi8(char(0x80))); }
  AVIARY_VNNI_FN static __m512i x_start(__m512i) { return _mm512_setzero_si512(); }
  AVIARY_VNNI_FN __m512i dot(__m512i x, __m512i) const { return _mm512_dpbusd_epi32(start, x, w); }
};

// Q4_0: weights are unsigned nibbles q, the value q - 8: the lanes start from
// -8 * (sum of their four activations), a per-activation constant.
struct Q4 {
  static constexpr size_t kBytes = 18;
  __m512i w;
  __m512 dw;
  AVIARY_VNNI_FN void load(const uint8_t* row, size_t b, bool two) {
    const uint8_t* b0 = row + b * kBytes;
    const uint8_t* b1 = two ? b0 + kBytes : nullptr;
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + quant::kQ4_0Qs));
    const __m128i q1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + quant::kQ4_0Qs)) : _mm_setzero_si128();
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    const __m256i mask = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(v, mask), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    // [b0 low, b1 low, b0 high, b1 high] -> [b0 low, b0 high, b1 low, b1 high]: the activations' order.
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    w = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    dw = load_dw(b0, b1);
  }
  AVIARY_VNNI_FN static __m512i prepare_x(__m512i s8) { return s8; }
  AVIARY_VNNI_FN static __m512i x_start(__m512i s8) {
    return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), s8));
  }
  AVIARY_VNNI_FN __m512i dot(__m512i x, __m512i x_start) const { return _mm512_dpbusd_epi32(x_start, w, x); }
};

// y[c * y_stride + r] for kR weight rows and kC activation rows, over `blocks` blocks.
template <class W, size_t kR, size_t kC>
AVIARY_VNNI_FN void tile(const uint8_t* w, size_t row_bytes, const int16_t* xq, const float* xd, size_t x_stride,
                         size_t blocks, float* y, size_t y_stride) {
  __m512 acc[kR][kC];
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) acc[r][c] = _mm512_setzero_ps();
  const size_t d_stride = x_stride / kBlock;
  for (size_t b = 0; b < blocks; b += 2) {
    const bool two = b + 1 < blocks;
    __m512i x[kC], xs[kC];
    __m512 dx[kC];
    for (size_t c = 0; c < kC; ++c) {
      const XPair p = load_x(xq + c * x_stride, xd + c * d_stride, b, two);
      x[c] = W::prepare_x(p.s8);
      xs[c] = W::x_start(p.s8);
      dx[c] = p.d;
    }
    for (size_t r = 0; r < kR; ++r) {
      W wr;
      wr.load(w + r * row_bytes, b, two);
      for (size_t c = 0; c < kC; ++c)
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(wr.dot(x[c], xs[c])), _mm512_mul_ps(wr.dw, dx[c]), acc[r][c]);
    }
  }
  for (size_t r = 0; r < kR; ++r)
    for (size_t c = 0; c < kC; ++c) y[c * y_stride + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <class W>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))) void rows(
    const int16_t* xq, const float* xd, size_t T, const uint8_t* data, size_t in, size_t out, size_t r0, size_t r1,
    float* y) {
  const size_t blocks = in / kBlock, row_bytes = blocks * W::kBytes, d_stride = blocks;
  constexpr size_t kGemvRows = 8, kRows = 4, kT = 4;
  const uint8_t* w = data + r0 * row_bytes;
  size_t o = r0;
  if (T == 1) {
    for (; o + kGemvRows <= r1; o += kGemvRows, w += kGemvRows * row_bytes)
      tile<W, kGemvRows, 1>(w, row_bytes, xq, xd, in, blocks, y + o, out);
    for (; o < r1; ++o, w += row_bytes) tile<W, 1, 1>(w, row_bytes, xq, xd, in, blocks, y + o, out);
    return;
  }
  for (; o + kRows <= r1; o += kRows, w += kRows * row_bytes) {
    size_t t = 0;
    for (; t + kT <= T; t += kT)
      tile<W, kRows, kT>(w, row_bytes, xq + t * in, xd + t * d_stride, in, blocks, y + t * out + o, out);
    for (; t < T; ++t) tile<W, kRows, 1>(w, row_bytes, xq + t * in, xd + t * d_stride, in, blocks, y + t * out + o, out);
  }
  for (; o < r1; ++o, w += row_bytes)
    for (size_t t = 0; t < T; ++t)
      tile<W, 1, 1>(w, row_bytes, xq + t * in, xd + t * d_stride, in, blocks, y + t * out + o, out);
}


// Panels (quant_dot_vnni.h): kP panels x kT activation rows. Per block, each
// activation row's integer dot products come from 8 vpdpbusd into two
// accumulators (two short dependency chains), then one fp32 MulAdd per row.
template <DType kType, size_t kP, size_t kT>
AVIARY_VNNI_FN void panel_tile(const uint8_t* w, size_t panel_stride, const int8_t* x8, const int32_t* corr,
                               const float* xd, size_t in, size_t blocks, float* y, size_t y_stride, size_t valid) {
  constexpr size_t kQuant = kType == DType::Q8_0 ? 32 : 16, kBlockBytes = kPanelRows * (2 + kQuant);
  __m512 acc[kP][kT];
  for (size_t p = 0; p < kP; ++p)
    for (size_t c = 0; c < kT; ++c) acc[p][c] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    for (size_t p = 0; p < kP; ++p) {
      const uint8_t* blk = w + p * panel_stride + b * kBlockBytes;
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
      const uint8_t* q = blk + 2 * kPanelRows;
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
        int32_t xw[8];
        std::memcpy(xw, xb, sizeof xw);
        __m512i even = _mm512_set1_epi32(corr[c * blocks + b]), odd = _mm512_setzero_si512();
        for (size_t k = 0; k < 8; k += 2) {
          even = _mm512_dpbusd_epi32(even, wv[k], _mm512_set1_epi32(xw[k]));
          odd = _mm512_dpbusd_epi32(odd, wv[k + 1], _mm512_set1_epi32(xw[k + 1]));
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
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma"))) void panels(
    const int8_t* x8, const int32_t* corr, const float* xd, size_t T, const uint8_t* data, size_t in, size_t out,
    size_t p0, size_t p1, float* y) {
  constexpr size_t kQuant = kType == DType::Q8_0 ? 32 : 16;
  const size_t blocks = in / kBlock, stride = blocks * kPanelRows * (2 + kQuant);
  // Rows of output still valid from panel p on (the last panel may be partial).
  auto valid = [&](size_t p) { return out - p * kPanelRows; };
  constexpr size_t kT = 8;
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
      const uint8_t* w = data + p * stride;
      size_t t = t0;
      for (; t + kT <= t0 + tn; t += kT)
        panel_tile<kType, 1, kT>(w, stride, x8 + t * in, corr + t * blocks, xd + t * blocks, in, blocks,
                                 y + t * out + p * kPanelRows, out, valid(p));
      // Leftover rows in smaller tiles: alone, a row waits on every vpdpbusd's latency.
      for (; t + 4 <= t0 + tn; t += 4)
        panel_tile<kType, 1, 4>(w, stride, x8 + t * in, corr + t * blocks, xd + t * blocks, in, blocks,
                                y + t * out + p * kPanelRows, out, valid(p));
      for (; t + 2 <= t0 + tn; t += 2)
        panel_tile<kType, 1, 2>(w, stride, x8 + t * in, corr + t * blocks, xd + t * blocks, in, blocks,
                                y + t * out + p * kPanelRows, out, valid(p));
      for (; t < t0 + tn; ++t)
        panel_tile<kType, 1, 1>(w, stride, x8 + t * in, corr + t * blocks, xd + t * blocks, in, blocks,
                                y + t * out + p * kPanelRows, out, valid(p));
    }
  }
}
}  // namespace

void linear_rows(const int16_t* xq, const float* xd, size_t T, const Matrix& W, size_t r0, size_t r1, float* y) {
  const auto* data = static_cast<const uint8_t*>(W.data);
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  if (W.dtype == DType::Q8_0) return rows<Q8>(xq, xd, T, data, in, out, r0, r1, y);
  return rows<Q4>(xq, xd, T, data, in, out, r0, r1, y);
}

void packed_rows(const int8_t* x8, const int32_t* corr, const float* xd, size_t T, const Matrix& W, size_t p0,
                 size_t p1, float* y) {
  const auto* data = static_cast<const uint8_t*>(W.packed);
  const size_t in = size_t(W.cols), out = size_t(W.rows);
  if (W.dtype == DType::Q8_0) return panels<DType::Q8_0>(x8, corr, xd, T, data, in, out, p0, p1, y);
  return panels<DType::Q4_0>(x8, corr, xd, T, data, in, out, p0, p1, y);
}

#else

void linear_rows(const int16_t*, const float*, size_t, const Matrix&, size_t, size_t, float*) {}
void packed_rows(const int8_t*, const int32_t*, const float*, size_t, const Matrix&, size_t, size_t, float*) {}

#endif

}  // namespace aviary::ops::vnni
