// A checkpoint: the named tensors of one weights file, mapped in place.
// Opens PyTorch `.pth` (torch.save ZIP + pickle), `.safetensors` and GGUF
// files, recognised by their content rather than their extension.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/gguf_value.h"
#include "io/tensor.h"
#include "io/zip_reader.h"
#include "util/mapped_file.h"

namespace aviary {

enum class CheckpointFormat { Pth, Safetensors, Gguf };

class Checkpoint {
 public:
  // Throws aviary::Error naming the file (and tensor, where relevant).
  static Checkpoint open(const std::string& path);

  // Builds a checkpoint from tensors that point into `file` (used by the readers).
  // `zip_entries` are the records whose CRC-32 verify_checksums() checks;
  // `metadata` is the safetensors "__metadata__" map; `gguf` a GGUF file's
  // key/value metadata. Throws on duplicate names.
  Checkpoint(std::shared_ptr<const MappedFile> file, CheckpointFormat format,
             std::vector<TensorView> tensors, std::vector<ZipEntry> zip_entries = {},
             std::map<std::string, std::string> metadata = {},
             std::shared_ptr<const GgufMetadata> gguf = nullptr);

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

  // A GGUF file's metadata; null for other formats.
  const GgufMetadata* gguf_metadata() const { return gguf_.get(); }
  const std::shared_ptr<const GgufMetadata>& gguf_metadata_ptr() const { return gguf_; }

  // The mapped file the tensors point into (shared by derived views).
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

  // Keeps `buffer` alive as long as this checkpoint: for views whose
  // tensors point into memory they own (e.g. a GGUF file's tensors
  // re-laid out under the official names).
  void keep_alive(std::shared_ptr<const void> buffer) { owned_.push_back(std::move(buffer)); }

 private:
  std::shared_ptr<const MappedFile> file_;
  CheckpointFormat format_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<ZipEntry> zip_entries_;
  std::map<std::string, std::string> metadata_;
  std::shared_ptr<const GgufMetadata> gguf_;
  std::vector<std::shared_ptr<const void>> owned_;
};

}  // namespace aviary
