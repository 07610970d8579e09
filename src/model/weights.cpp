#include "model/weights.h"

#include <algorithm>
#include <cstring>

#include "ops/linear.h"
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

const uint8_t* WeightReader::contiguous_data(const TensorView& t) {
  if (t.is_contiguous()) return t.data;
  if (dtype_is_quantized(t.dtype))  // blocks cannot be re-strided element by element
    throw error_in(ckpt_.path(), "tensor '" + t.name + "' is block-quantized but not contiguous");
  // Rare (a transposed view saved as is): copy once into row-major order.
  auto& buf = owned_.emplace_back(t.nbytes());
  const size_t es = dtype_size(t.dtype);
  for (int64_t flat = 0; flat < t.numel(); ++flat) {
    int64_t offset = 0, rest = flat;
    for (size_t d = t.shape.size(); d-- > 0;) {
      offset += (rest % t.shape[d]) * t.strides[d];
      rest /= t.shape[d];
    }
    std::memcpy(buf.data() + size_t(flat) * es, t.data + size_t(offset) * es, es);
  }
  return buf.data();
}

ops::Matrix WeightReader::matrix(const std::string& name, int64_t rows, int64_t cols) {
  const TensorView& t = require(name);
  check_shape(t, {rows, cols});
  return ops::Matrix{contiguous_data(t), t.dtype, rows, cols};
}

uint8_t* WeightReader::packed_space(size_t bytes) {
  // Cache-line aligned. Untouched pages of a shared buffer never become
  // resident, so its unused end costs address space only.
  constexpr size_t kAlign = 64, kChunk = size_t(256) << 20;
  const size_t need = (bytes + kAlign - 1) / kAlign * kAlign;
  if (!chunk_ || chunk_used_ + need > chunk_->size()) {
    chunk_ = &owned_.emplace_back(std::max(need, kChunk));
    chunk_used_ = 0;
  }
  uint8_t* p = chunk_->data() + chunk_used_;
  chunk_used_ += need;
  return p;
}

void WeightReader::pack(ops::Matrix& m) {
  const size_t bytes = ops::linear_pack_bytes(m);
  if (bytes == 0) return;
  ops::linear_pack(m, packed_space(bytes));  // sets m.packed
  packed_bytes_delta_ += int64_t(bytes) - int64_t(size_t(m.rows) * m.row_bytes());
  // MappedFile::release ignores a range outside the mapping (a materialised copy).
  if (ckpt_.file()) ckpt_.file()->release(m.data, size_t(m.rows) * m.row_bytes());
}

ops::Matrix WeightReader::projection(const std::string& name, int64_t rows, int64_t cols) {
  ops::Matrix m = matrix(name, rows, cols);
  pack(m);
  return m;
}

ops::Matrix WeightReader::transposed_projection(const std::string& name, int64_t in, int64_t out) {
  const TensorView& t = require(name);
  check_shape(t, {in, out});
  // The last two dimensions swapped (check_shape allows leading 1s).
  TensorView transposed = t;
  const size_t n = t.shape.size();
  transposed.shape = {out, in};
  transposed.strides = {t.strides[n - 1], n >= 2 ? t.strides[n - 2] : 0};  // a [out] vector when in == 1
  ops::Matrix m{contiguous_data(transposed), t.dtype, out, in};
  pack(m);
  return m;
}

std::vector<ops::Matrix> WeightReader::matrices(const std::string& name, int64_t count, int64_t rows,
                                                int64_t cols) {
  const TensorView& t = require(name);
  check_shape(t, {count, rows, cols});
  const uint8_t* base = contiguous_data(t);
  std::vector<ops::Matrix> out;
  for (int64_t i = 0; i < count; ++i)
    out.push_back({base + dtype_bytes(t.dtype, i * rows * cols), t.dtype, rows, cols});
  return out;
}

std::vector<float> WeightReader::vector(const std::string& name,
                                        const std::vector<int64_t>& shape) const {
  const TensorView& t = require(name);
  check_shape(t, shape);
  std::vector<float> v(size_t(t.numel()));
  if (dtype_is_quantized(t.dtype)) {  // whole blocks, decoded at once (GGUF files may quantize anything)
    if (!t.is_contiguous())
      throw error_in(ckpt_.path(), "tensor '" + t.name + "' is block-quantized but not contiguous");
    ops::convert_to_f32(t.data, t.dtype, t.numel(), v.data());
    return v;
  }
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.at(i);
  return v;
}

}  // namespace aviary
