// Helpers shared by the two directions of the rwkv7 GGUF mapping: element
// conversion of whole tensors and rows, and the GGUF tensor names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor.h"

namespace aviary::gguf_rwkv7 {

// GGUF names: "blk.<i>.<what>.weight" (or ".bias").
std::string blk(int64_t layer, const std::string& what, const char* suffix = "weight");

// All elements of `t` in C order as fp32 (any stride; block-quantized types
// need the ops quantization kernels, else a clear error).
std::vector<float> to_f32(const TensorView& t);

// Row `r` of a [rows, cols] tensor as fp32 into `out` (cols values).
void row_to_f32(const TensorView& t, int64_t r, int64_t cols, float* out);

// Encodes `n` fp32 values as `type` (n a multiple of its block size).
void encode_row(const float* src, int64_t n, DType type, uint8_t* dst);

// [rows, cols] -> [cols, rows].
std::vector<float> transpose(const std::vector<float>& m, int64_t rows, int64_t cols);

}  // namespace aviary::gguf_rwkv7
