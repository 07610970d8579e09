// Element types of stored tensors and the scalar conversions between them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <string_view>

namespace aviary {

// F32/F16/BF16 are plain element types. The others are llama.cpp's (GGML)
// block-quantized layouts: a row is a sequence of blocks, each holding
// dtype_block_elems() values in dtype_block_bytes() bytes
// (ops/quant.h has the layouts): 32-value blocks Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
// and 256-value "K" super-blocks Q4_K, Q5_K, Q6_K.
enum class DType : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q4_1, Q5_0, Q5_1, Q5_K, Q6_K };

// Every DType, in enum order (for lookups by name and exhaustive tests).
inline constexpr DType kAllDTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K,
                                       DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q5_K, DType::Q6_K};

constexpr bool dtype_is_quantized(DType t) { return t != DType::F32 && t != DType::F16 && t != DType::BF16; }

constexpr bool dtype_is_k_quant(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }

constexpr int64_t dtype_block_elems(DType t) {
  return dtype_is_k_quant(t) ? 256 : dtype_is_quantized(t) ? 32 : 1;
}

constexpr size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::Q8_0: return 34;
    case DType::Q4_0: return 18;
    case DType::Q4_K: return 144;
    case DType::Q4_1: return 20;
    case DType::Q5_0: return 22;
    case DType::Q5_1: return 24;
    case DType::Q5_K: return 176;
    case DType::Q6_K: return 210;
  }
  return 0;
}

// Bytes per element of a plain element type (not meaningful for block types:
// use dtype_bytes()).
constexpr size_t dtype_size(DType t) { return dtype_block_bytes(t); }

// Bytes of `n` consecutive values (n a multiple of the block size).
constexpr size_t dtype_bytes(DType t, int64_t n) {
  return size_t(n / dtype_block_elems(t)) * dtype_block_bytes(t);
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::Q8_0: return "q8_0";
    case DType::Q4_0: return "q4_0";
    case DType::Q4_K: return "q4_k";
    case DType::Q4_1: return "q4_1";
    case DType::Q5_0: return "q5_0";
    case DType::Q5_1: return "q5_1";
    case DType::Q5_K: return "q5_k";
    case DType::Q6_K: return "q6_k";
  }
  return "?";
}

inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

// Round-to-nearest-even, as torch does when casting fp32 to bf16; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: value = man * 2^-24
      float v = float(man) * 0x1p-24f;
      bits = sign | std::bit_cast<uint32_t>(v);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

// Round-to-nearest-even fp32 -> fp16 with overflow to infinity.
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);       // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);      // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                       // below 2^-14: subnormal or zero
    const float scaled = std::bit_cast<float>(abs) * 0x1p24f;    // exact multiple of 2^-24 units
    const uint32_t m = uint32_t(std::nearbyint(scaled));
    return uint16_t(sign | m);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  return uint16_t(sign | ((r - 0x38000000u) >> 13));
}

// Reads element i of a contiguous buffer of a plain element type as fp32.
inline float load_as_f32(const void* base, DType t, size_t i) {
  switch (t) {
    case DType::F32: {
      float v;
      std::memcpy(&v, static_cast<const char*>(base) + 4 * i, 4);
      return v;
    }
    case DType::F16: {
      uint16_t h;
      std::memcpy(&h, static_cast<const char*>(base) + 2 * i, 2);
      return f16_to_f32(h);
    }
    case DType::BF16: {
      uint16_t h;
      std::memcpy(&h, static_cast<const char*>(base) + 2 * i, 2);
      return bf16_to_f32(h);
    }
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q5_K: case DType::Q6_K:
      break;  // block types are decoded a block at a time (ops/quant.h), not per element
  }
  return 0.f;
}

}  // namespace aviary
