// Memory bandwidth of this machine, measured: the ceiling that token
// generation (which reads every weight once per token) can approach.
#pragma once

#include <cstdint>
#include <vector>

namespace aviary::ops {

struct MembwOptions {
  // Buffer size: much larger than the last-level cache, so that the reads
  // come from DRAM. 1 GiB is far beyond any current CPU's L3.
  int64_t buffer_bytes = int64_t(1) << 30;
  int passes = 5;  // timed passes; the median is reported
};

struct MembwResult {
  double gbs = 0;                  // median over passes, in 1e9 bytes per second
  std::vector<double> pass_gbs;    // every pass, in order
  int64_t buffer_bytes = 0;
  int threads = 0;                 // the default pool's size during the measurement
};

// A streaming read of the whole buffer per pass, split over the default
// thread pool (ops kernels use the same pool, so the figure matches what they
// can reach). Each thread first touches its own block, so on NUMA machines
// the pages live near the thread that reads them. Throws aviary::Error for a
// buffer under 1 MiB or fewer than 1 pass.
MembwResult measure_memory_bandwidth(const MembwOptions& options = {});

// The sum the timed loop computes over `words`, kept so the loop cannot be
// optimised away; exposed for the test that checks it reads every word.
uint64_t streaming_read_sum(const uint64_t* words, int64_t n);

}  // namespace aviary::ops
