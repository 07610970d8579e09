// A checkpoint: the named tensors of one weights file, mapped in place.
// Opens PyTorch `.pth` (torch.save ZIP + pickle) and `.safetensors` files,
// recognised by their content rather than their extension.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tensor.h"
#include "util/mapped_file.h"

namespace aviary {

enum class CheckpointFormat { Pth, Safetensors };

class Checkpoint {
 public:
  // Throws aviary::Error naming the file (and tensor, where relevant).
  static Checkpoint open(const std::string& path);

  // Builds a checkpoint from tensors that point into `file` (used by the readers).
  Checkpoint(std::shared_ptr<const MappedFile> file, CheckpointFormat format,
             std::vector<TensorView> tensors);

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  CheckpointFormat format() const { return format_; }

  // Tensors in file order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  const TensorView* find(std::string_view name) const;
  // Throws "FILE: missing tensor NAME".
  const TensorView& get(std::string_view name) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  CheckpointFormat format_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace aviary
