#include "util/page_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "util/error.h"

namespace aviary {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

PageBuffer::PageBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  const size_t want = round_up(bytes, size_t(sysconf(_SC_PAGESIZE)));
  // Huge pages need 2 MiB-aligned ranges: map a little more, trim to alignment.
  const bool huge = bytes >= kHugePage;
  const size_t len = huge ? want + kHugePage : want;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes: " + std::strerror(errno));
  auto* base = static_cast<uint8_t*>(p);
  data_ = huge ? reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(base), kHugePage)) : base;
  mapped_ = want;
  if (data_ > base) munmap(base, size_t(data_ - base));
  if (base + len > data_ + want) munmap(data_ + want, size_t(base + len - (data_ + want)));
#ifdef MADV_HUGEPAGE
  // Only the whole huge pages: a partly used one at the end would be resident
  // in full (up to 2 MiB more than asked per buffer); the tail keeps small pages.
  if (huge) madvise(data_, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice only
#endif
}

PageBuffer::~PageBuffer() {
  if (data_) munmap(data_, mapped_);
}

PageBuffer::PageBuffer(PageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

PageBuffer& PageBuffer::operator=(PageBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) munmap(data_, mapped_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

}  // namespace aviary
