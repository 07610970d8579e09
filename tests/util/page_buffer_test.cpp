// PageBuffer: zero-filled, writable, the asked size, movable; huge sizes are
// 2 MiB-aligned (the huge-page trim).
#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "util/error.h"
#include "util/page_buffer.h"

namespace aviary {
namespace {

TEST(PageBuffer, ZeroFilledWritableOfTheAskedSize) {
  for (size_t n : {size_t(1), size_t(4095), size_t(4097), (size_t(2) << 20) + 1, size_t(5) << 20}) {
    PageBuffer b(n);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(b.size(), n);
    for (size_t i = 0; i < n; i += 997) ASSERT_EQ(b.data()[i], 0) << n << " " << i;
    EXPECT_EQ(b.data()[n - 1], 0);
    b.data()[0] = 1;
    b.data()[n - 1] = 2;
    EXPECT_EQ(b.data()[n - 1], 2);
    if (n >= (size_t(2) << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t(2) << 20), 0u);
    }
  }
}

TEST(PageBuffer, EmptyAndMoves) {
  PageBuffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
  PageBuffer a(100);
  a.data()[5] = 7;
  uint8_t* p = a.data();
  PageBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  PageBuffer c(10);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.data()[5], 7);
  EXPECT_EQ(c.size(), 100u);
}

TEST(PageBuffer, ImpossibleSizeIsAnError) {
  EXPECT_THROW(PageBuffer(size_t(1) << 62), Error);
}

}  // namespace
}  // namespace aviary
