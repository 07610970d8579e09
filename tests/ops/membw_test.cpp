// The memory bandwidth measurement (ops/membw.h): its read loop XORs every
// word (odd lengths, unaligned starts), and a measurement reports its passes
// and rejects bad options.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ops/membw.h"
#include "util/error.h"

namespace aviary::ops {
namespace {

TEST(Membw, StreamingReadSumXorsEveryWord) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> words(1100);
  for (auto& w : words) w = rng();
  for (int64_t start : {0, 1, 3})
    for (int64_t n : {0, 1, 3, 7, 8, 17, 31, 32, 33, 64, 130, 1000}) {
      uint64_t want = 0;
      for (int64_t i = 0; i < n; ++i) want ^= words[size_t(start + i)];
      EXPECT_EQ(streaming_read_sum(words.data() + start, n), want) << "start " << start << " n " << n;
    }
}

TEST(Membw, ReportsEveryPass) {
  MembwOptions o;
  o.buffer_bytes = int64_t(4) << 20;
  o.passes = 3;
  const MembwResult r = measure_memory_bandwidth(o);
  EXPECT_EQ(r.pass_gbs.size(), 3u);
  EXPECT_EQ(r.buffer_bytes, o.buffer_bytes);
  for (double g : r.pass_gbs) EXPECT_GT(g, 0.0);
  EXPECT_GT(r.gbs, 0.0);
}

TEST(Membw, RejectsTinyBufferAndNoPasses) {
  MembwOptions small;
  small.buffer_bytes = 1000;
  EXPECT_THROW(measure_memory_bandwidth(small), Error);
  MembwOptions none;
  none.buffer_bytes = int64_t(1) << 20;
  none.passes = 0;
  EXPECT_THROW(measure_memory_bandwidth(none), Error);
}

}  // namespace
}  // namespace aviary::ops
