// Typed, shape-checked access to a checkpoint's tensors for the model
// builders. Matrices stay in their stored type: in the mapped file, or (the
// ones ops::linear multiplies, through projection()) re-laid once for the
// kernels with the file's pages released; only small per-channel vectors are
// converted to fp32 copies.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "ops/matrix.h"
#include "util/page_buffer.h"

namespace aviary {

// Owns the few tensors that must be materialised (a non-contiguous matrix,
// say); everything else points into the checkpoint's mapping.
class WeightReader {
 public:
  explicit WeightReader(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  // Errors name the file and the tensor.
  const TensorView& require(const std::string& name) const;

  // A [rows, cols] matrix, used in place when contiguous.
  ops::Matrix matrix(const std::string& name, int64_t rows, int64_t cols);

  // A [rows, cols] matrix that the model multiplies with ops::linear: as
  // matrix(), plus the copy re-laid for this CPU's kernels where they have one
  // (ops::linear_pack), owned here; the file's pages of the original are then
  // released, so resident memory does not grow.
  ops::Matrix projection(const std::string& name, int64_t rows, int64_t cols);

  // A matrix stored [in, out] (as the official files keep the RWKV-7 LoRA
  // factors) for ops::linear, which takes [out, in]: the file's data in
  // place when it holds the transpose (a GGUF view), else a transposed copy;
  // then re-laid and released as projection() does.
  ops::Matrix transposed_projection(const std::string& name, int64_t in, int64_t out);

  // The `count` [rows, cols] matrices of a [count, rows, cols] tensor.
  std::vector<ops::Matrix> matrices(const std::string& name, int64_t count, int64_t rows, int64_t cols);

  // A vector of `shape` (leading 1s in the file are ignored, so [1, 1, C]
  // matches [C]) converted to fp32.
  std::vector<float> vector(const std::string& name, const std::vector<int64_t>& shape) const;

  // Takes ownership of the copies: materialised tensors and re-laid weights.
  std::deque<PageBuffer> take_owned() {
    chunk_ = nullptr;
    return std::move(owned_);
  }

  // The kernels' copies' bytes minus those of the tensors they replace, over
  // every matrix packed so far: negative where f32 weights are held as bf16
  // (ops::linear_pack), positive for padding rows.
  int64_t packed_bytes_delta() const { return packed_bytes_delta_; }

 private:
  void check_shape(const TensorView& t, const std::vector<int64_t>& shape) const;
  const uint8_t* contiguous_data(const TensorView& t);
  // Adds the re-laid copy (ops::linear_pack) where the kernels have one.
  void pack(ops::Matrix& m);
  // Room for one re-laid copy. Copies share large buffers, one after the
  // other in load order (which is close to the order decode reads them), so
  // that they lie in huge pages and one product's weights continue where the
  // previous one's end: a buffer per matrix would leave every small one, and
  // the tail of each large one, on 4 KiB pages.
  uint8_t* packed_space(size_t bytes);
  const Checkpoint& ckpt_;
  std::deque<PageBuffer> owned_;
  PageBuffer* chunk_ = nullptr;  // the shared buffer being filled (in owned_)
  size_t chunk_used_ = 0;
  int64_t packed_bytes_delta_ = 0;
};

// Shape with leading 1s removed: [1, 1, C] -> [C].
std::vector<int64_t> squeeze_leading(const std::vector<int64_t>& shape);

}  // namespace aviary
