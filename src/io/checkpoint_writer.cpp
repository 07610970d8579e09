#include "io/checkpoint_writer.h"

#include <cstring>
#include <unordered_set>

#include "util/error.h"

namespace aviary {

TensorData tensor_data(const TensorView& view) {
  if (!view.is_contiguous())
    throw Error("tensor '" + view.name + "' is not contiguous; copy it with contiguous_bytes()");
  return {view.name, view.dtype, view.shape, {view.data, view.nbytes()}};
}

std::vector<uint8_t> contiguous_bytes(const TensorView& view) {
  const size_t esize = dtype_size(view.dtype);
  std::vector<uint8_t> out(view.nbytes());
  std::vector<int64_t> index(view.shape.size(), 0);
  for (size_t flat = 0; flat < size_t(view.numel()); ++flat) {
    int64_t offset = 0;
    for (size_t d = 0; d < index.size(); ++d) offset += index[d] * view.strides[d];
    std::memcpy(out.data() + flat * esize, view.data + offset * int64_t(esize), esize);
    for (size_t d = index.size(); d-- > 0;) {  // odometer step in C order
      if (++index[d] < view.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

void check_tensor_data(const std::string& path, const std::vector<TensorData>& tensors) {
  std::unordered_set<std::string> names;
  for (const TensorData& t : tensors) {
    const std::string where = "tensor '" + t.name + "'";
    if (!names.insert(t.name).second) throw error_in(path, "duplicate " + where);
    uint64_t numel = 1;
    for (int64_t d : t.shape)
      if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel))
        throw error_in(path, where + ": invalid shape " + shape_string(t.shape));
    if (numel > t.bytes.size() || numel * dtype_size(t.dtype) != t.bytes.size())
      throw error_in(path, where + ": " + std::to_string(t.bytes.size()) +
                               " bytes given, expected " + std::to_string(numel) + " x " +
                               std::to_string(dtype_size(t.dtype)) + " for shape " +
                               shape_string(t.shape) + " " + std::string(dtype_name(t.dtype)));
  }
}

}  // namespace aviary
