// Q8_0 / Q4_0 integer products with AVX512-VNNI (vpdpbusd: 64 byte products
// per instruction, four to an int32 lane), for x86 CPUs that have it (Ice
// Lake, Zen 4 and later). The AVX-512 Highway target of quant_dot-inl.h calls
// it when enabled(); the arithmetic contract is quant_dot.h's, with lanes of
// four products instead of two, so results differ from the other variants only
// in fp32 summation order. Two blocks share a 512-bit vector: lanes 0-7 hold
// block b, lanes 8-15 block b + 1, each scaled by its own d_w * d_x.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops::vnni {

// Whether the CPU has AVX512-VNNI (with F, BW, VL) and the path is not turned
// off by AVIARY_VNNI=0 or set_enabled(false).
bool enabled();

// For tests and comparisons: turn the path off (or back on, where supported).
void set_enabled(bool on);

// Output rows [r0, r1) of y = x W^T for Q8_0 / Q4_0 W, x given quantized
// (q: [T, W.cols] int16 values in int8 range, d: [T, W.cols / 32] scales).
// Only call when enabled().
void linear_rows(const int16_t* xq, const float* xd, size_t T, const Matrix& W, size_t r0, size_t r1, float* y);

}  // namespace aviary::ops::vnni
