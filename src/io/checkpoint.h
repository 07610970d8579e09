// A checkpoint: the named tensors of one weights file, mapped in place.
// Opens PyTorch `.pth` (torch.save ZIP + pickle) and `.safetensors` files,
// recognised by their content rather than their extension.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tensor.h"
#include "io/zip_reader.h"
#include "util/mapped_file.h"

namespace aviary {

enum class CheckpointFormat { Pth, Safetensors };

class Checkpoint {
 public:
  // Throws aviary::Error naming the file (and tensor, where relevant).
  static Checkpoint open(const std::string& path);

  // Builds a checkpoint from tensors that point into `file` (used by the readers).
  // `zip_entries` are the records whose CRC-32 verify_checksums() checks;
  // `metadata` is the safetensors "__metadata__" map. Throws on duplicate names.
  Checkpoint(std::shared_ptr<const MappedFile> file, CheckpointFormat format,
             std::vector<TensorView> tensors, std::vector<ZipEntry> zip_entries = {},
             std::map<std::string, std::string> metadata = {});

  const std::string& path() const { return file_->path(); }
  size_t file_size() const { return file_->size(); }
  CheckpointFormat format() const { return format_; }

  // Tensors in file order.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  const TensorView* find(std::string_view name) const;
  // Throws "FILE: missing tensor NAME".
  const TensorView& get(std::string_view name) const;

  // Checks the CRC-32 of every ZIP record, tensor data included. Reading the
  // whole file is too slow to do at open, so callers ask for it (e.g. a
  // `verify` command). Throws "FILE: CRC-32 mismatch in entry NAME ...".
  // Safetensors files carry no checksums: nothing to check.
  void verify_checksums() const;

  // The safetensors "__metadata__" strings; empty for .pth files.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  CheckpointFormat format_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<ZipEntry> zip_entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace aviary
