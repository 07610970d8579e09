#include "ops/matrix.h"

#include "ops/quant.h"

namespace aviary::ops {

void convert_to_f32(const void* src, DType t, int64_t n, float* dst) { dequantize_row(t, src, n, dst); }

}  // namespace aviary::ops
