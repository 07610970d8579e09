#include "model/weights.h"

#include <cstring>

#include "util/error.h"

namespace aviary {

std::vector<int64_t> squeeze_leading(const std::vector<int64_t>& shape) {
  size_t i = 0;
  while (i + 1 < shape.size() && shape[i] == 1) ++i;
  return {shape.begin() + std::ptrdiff_t(i), shape.end()};
}

const TensorView& WeightReader::require(const std::string& name) const {
  const TensorView* t = ckpt_.find(name);
  if (!t) throw error_in(ckpt_.path(), "missing tensor '" + name + "'");
  return *t;
}

void WeightReader::check_shape(const TensorView& t, const std::vector<int64_t>& shape) const {
  if (squeeze_leading(t.shape) != squeeze_leading(shape))
    throw error_in(ckpt_.path(), "tensor '" + t.name + "' has shape " + shape_string(t.shape) +
                                     ", expected " + shape_string(shape));
}

ops::Matrix WeightReader::matrix(const std::string& name, int64_t rows, int64_t cols) {
  const TensorView& t = require(name);
  check_shape(t, {rows, cols});
  ops::Matrix m{t.data, t.dtype, rows, cols};
  if (!t.is_contiguous()) {
    // Rare (a transposed view saved as is): copy once into row-major order.
    auto& buf = owned_.emplace_back(t.nbytes());
    const size_t es = dtype_size(t.dtype);
    const int64_t rs = t.strides[t.strides.size() - 2], cs = t.strides.back();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        std::memcpy(buf.data() + size_t(r * cols + c) * es, t.data + size_t(r * rs + c * cs) * es, es);
    m.data = buf.data();
  }
  return m;
}

std::vector<float> WeightReader::vector(const std::string& name,
                                        const std::vector<int64_t>& shape) const {
  const TensorView& t = require(name);
  check_shape(t, shape);
  std::vector<float> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.at(i);
  return v;
}

}  // namespace aviary
