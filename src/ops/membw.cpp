#include "ops/membw.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "util/error.h"
#include "util/page_buffer.h"
#include "util/thread_pool.h"

namespace aviary::ops {

uint64_t streaming_read_sum(const uint64_t* words, int64_t n) {
  // Four independent accumulators let the compiler keep several loads in
  // flight and vectorise; XOR is cheap enough that memory stays the limit.
  uint64_t a = 0, b = 0, c = 0, d = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a ^= words[i];
    b ^= words[i + 1];
    c ^= words[i + 2];
    d ^= words[i + 3];
  }
  for (; i < n; ++i) a ^= words[i];
  return a ^ b ^ c ^ d;
}

MembwResult measure_memory_bandwidth(const MembwOptions& options) {
  if (options.buffer_bytes < (int64_t(1) << 20))
    throw Error("memory bandwidth: the buffer must be at least 1 MiB (got " +
                std::to_string(options.buffer_bytes) + " bytes)");
  if (options.passes < 1) throw Error("memory bandwidth: at least one pass is needed");
  const int64_t n = options.buffer_bytes / int64_t(sizeof(uint64_t));
  // The kind of memory the weights' panels live in (util/page_buffer.h: huge
  // pages where the kernel gives them): on 4 KiB pages the hardware prefetchers
  // stop at every page boundary, and the figure would rate the weights'
  // streams against a slower kind of read. The first touch below happens on
  // the reading threads.
  PageBuffer pages(size_t(n) * sizeof(uint64_t));
  auto* buffer = reinterpret_cast<uint64_t*>(pages.data());
  ThreadPool& pool = default_pool();
  pool.parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) buffer[size_t(i)] = uint64_t(i) * 0x9e3779b97f4a7c15ull;
  });

  MembwResult result;
  result.buffer_bytes = n * int64_t(sizeof(uint64_t));
  result.threads = pool.size();
  std::atomic<uint64_t> sink{0};  // an atomic side effect keeps the reads from being optimised away
  for (int pass = 0; pass < options.passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](int64_t begin, int64_t end) {
      sink.fetch_xor(streaming_read_sum(buffer + begin, end - begin), std::memory_order_relaxed);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.pass_gbs.push_back(double(result.buffer_bytes) / std::max(seconds, 1e-9) / 1e9);
  }
  std::vector<double> sorted = result.pass_gbs;
  std::sort(sorted.begin(), sorted.end());
  const size_t m = sorted.size();
  result.gbs = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
  return result;
}

}  // namespace aviary::ops
