// A named view of tensor data that lives in a mapped checkpoint file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/dtype.h"

namespace aviary {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, one per dimension
  const uint8_t* data = nullptr;  // first element (storage offset already applied)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }  // block types: whole blocks

  // A tensor without elements is contiguous whatever its strides (as in torch,
  // whose strides for shape [3, 0] are [1, 1]).
  bool is_contiguous() const {
    if (numel() == 0) return true;
    int64_t expected = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }

  // Element at a flat C-order index, honouring strides, as fp32.
  float at(int64_t flat) const {
    int64_t offset = 0;
    for (size_t i = shape.size(); i-- > 0;) {
      const int64_t idx = flat % shape[i];
      flat /= shape[i];
      offset += idx * strides[i];
    }
    return load_as_f32(data, dtype, size_t(offset));
  }
};

// "[1, 1, 128]"
std::string shape_string(const std::vector<int64_t>& shape);

// Row-major strides of a contiguous tensor of this shape.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);

}  // namespace aviary
