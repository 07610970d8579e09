// A file written under a temporary name and renamed into place on commit(),
// so a crash or error part-way never leaves a damaged file at the target
// path. It streams, so multi-GB checkpoints
// need not be assembled in memory first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aviary {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws naming the path
  ~AtomicFile();                          // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  uint64_t position() const { return position_; }
  const std::string& path() const { return path_; }

  // fsync, close, rename over `path`.
  void commit();

 private:
  [[noreturn]] void fail(const std::string& what, int err);
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t position_ = 0;
};

}  // namespace aviary
