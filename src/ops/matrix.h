// A weight matrix in its stored element type, row-major, used in place.
// Kernels convert elements to fp32 on the fly, never to an fp32 copy; the
// one copy a model makes is `packed`, the same bytes re-laid for the kernels.
// For the block-quantized types (ops/quant.h) each row is a whole number of
// blocks: cols must be a multiple of dtype_block_elems(dtype).
#pragma once

#include <cstdint>

#include "util/dtype.h"

namespace aviary::ops {

struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  // The same weights re-laid for this CPU's kernels (ops/linear.h:
  // linear_pack), or null. `data` stays the row-major original: the reference
  // and the other kernels read it.
  const void* packed = nullptr;
  // Set by linear_pack when the float panels hold f16 or f32 weights as bf16:
  // every value of W is a bf16 value (as in files converted from the official
  // bf16 checkpoints), so the copy is exact (ops/float_panels.h).
  bool packed_as_bf16 = false;

  size_t row_bytes() const { return dtype_bytes(dtype, cols); }

  const uint8_t* row_ptr(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * row_bytes(); }
};

// One product y = x W^T of ops::linear (x: [T, W->cols], y: [T, W->rows]),
// for the calls that hand several out to the thread pool at once.
struct LinearJob {
  const float* x;
  int64_t T;
  const Matrix* W;
  float* y;
};

// Converts `n` contiguous elements of type `t` to fp32 (for block types n is
// a whole number of blocks, else aviary::Error).
void convert_to_f32(const void* src, DType t, int64_t n, float* dst);

}  // namespace aviary::ops
