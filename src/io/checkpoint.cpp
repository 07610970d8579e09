#include "io/checkpoint.h"

#include "io/gguf_reader.h"
#include "io/pth_reader.h"
#include "io/safetensors_reader.h"
#include "util/error.h"

namespace aviary {

namespace {
// (Existing tests match the first part of this message.)
constexpr const char* kNotACheckpoint = "not a PyTorch .pth (ZIP) or .safetensors file, nor GGUF";
}

// The format is recognised by content: files are often renamed, and a .pth
// may even be a safetensors file.
Checkpoint Checkpoint::open(const std::string& path) {
  auto file = MappedFile::open(path);
  if (file->size() == 0)
    throw error_in(path, std::string("empty file (0 bytes); ") + kNotACheckpoint);
  if (has_zip_magic(*file)) return read_pth(std::move(file));
  if (has_gguf_magic(*file)) return read_gguf(std::move(file));
  if (looks_like_safetensors(*file)) return read_safetensors(std::move(file));
  throw error_in(path, kNotACheckpoint);
}

Checkpoint::Checkpoint(std::shared_ptr<const MappedFile> file, CheckpointFormat format,
                       std::vector<TensorView> tensors, std::vector<ZipEntry> zip_entries,
                       std::map<std::string, std::string> metadata,
                       std::shared_ptr<const GgufMetadata> gguf)
    : file_(std::move(file)),
      format_(format),
      tensors_(std::move(tensors)),
      zip_entries_(std::move(zip_entries)),
      metadata_(std::move(metadata)),
      gguf_(std::move(gguf)) {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (!index_.emplace(tensors_[i].name, i).second)
      throw error_in(file_->path(), "duplicate tensor name '" + tensors_[i].name + "'");
}

const TensorView* Checkpoint::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& Checkpoint::get(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  throw error_in(path(), "missing tensor " + std::string(name));
}

void Checkpoint::verify_checksums() const {
  for (const ZipEntry& e : zip_entries_) check_entry_crc(*file_, e);
}

}  // namespace aviary
