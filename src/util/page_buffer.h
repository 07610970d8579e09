// A large zero-filled buffer straight from the kernel (an anonymous
// mapping), for the re-laid weight copies made at load: the pages arrive
// zeroed, so nothing zeroes them a second time, and they are asked to be
// transparent huge pages (2 MiB): a load takes 512x fewer page faults and the
// kernels streaming the weights fewer TLB misses. Where huge pages are off,
// it is an ordinary page-aligned buffer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aviary {

class PageBuffer {
 public:
  PageBuffer() = default;
  // Throws aviary::Error (naming the size) when the memory is not available.
  explicit PageBuffer(size_t bytes);
  ~PageBuffer();
  PageBuffer(PageBuffer&& other) noexcept;
  PageBuffer& operator=(PageBuffer&& other) noexcept;
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;     // as asked
  size_t mapped_ = 0;   // bytes mapped at data_ (whole pages)
};

}  // namespace aviary
