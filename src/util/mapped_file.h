// Read-only memory map of a whole file. Tensor data is used in place from
// the map, so loading a checkpoint copies no weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace aviary {

class MappedFile {
 public:
  // Throws aviary::Error naming the path if the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

  // Drops the whole pages inside [p, p + n) from this process's resident
  // memory (they come back from the file if read again): for tensors that were
  // read once to make a converted copy. Ranges outside the mapping are
  // ignored; failure only means the pages stay resident.
  void release(const void* p, size_t n) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace aviary
