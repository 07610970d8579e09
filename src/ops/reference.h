// The plain scalar kernels: single-threaded C++ loops, no SIMD. They define
// what the fast kernels compute (the tests hold every SIMD variant to them)
// and run when AVIARY_SIMD=reference (see ops/simd.h). Same contracts as the
// functions of the same names in linear.h, wkv5.h and wkv7.h.
#pragma once

#include <cstdint>

#include "ops/matrix.h"

namespace aviary::ops::reference {

void linear(const float* x, int64_t T, const Matrix& W, float* y);
void linear_in_out(const float* x, int64_t T, const Matrix& W, float* y);
float dot(const float* a, const float* b, int64_t n);
void axpy(float alpha, const float* x, float* y, int64_t n);

void wkv5_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* k,
                   const float* v, const float* w, int64_t w_stride, const float* u, float* y);
void wkv7_sequence(float* S, int64_t H, int64_t N, int64_t T, const float* r, const float* w,
                   const float* k, const float* v, const float* kk, const float* a, float* y);

}  // namespace aviary::ops::reference
