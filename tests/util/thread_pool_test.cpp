// The persistent thread pool: coverage of every index, static contiguous
// blocks, balanced pieces, the caller's participation, nesting, concurrent callers, no
// allocation per call, and the default pool's thread count.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "util/thread_pool.h"

// Counts allocations made anywhere in this test binary while counting is on.
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<int64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace aviary {
namespace {

TEST(ThreadPool, CoversEveryIndexOnceInStaticContiguousBlocks) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 64, 1000, 4099}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex m;
      std::vector<std::pair<int64_t, int64_t>> blocks;
      pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
        std::lock_guard lock(m);
        blocks.emplace_back(begin, end);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << threads << " " << n << " " << i;
      // Each block is one of the documented static blocks, and none is empty.
      for (auto [b, e] : blocks) {
        ASSERT_LT(b, e);
        if (n == 1 || threads == 1) {
          EXPECT_EQ(b, 0);
          EXPECT_EQ(e, n);
          continue;
        }
        bool found = false;
        for (int64_t k = 0; k < threads; ++k) found |= b == n * k / threads && e == n * (k + 1) / threads;
        EXPECT_TRUE(found) << "[" << b << ", " << e << ") of " << n;
      }
    }
  }
}

// Balanced: any number of pieces per thread, each contiguous and non-empty,
// together covering every index exactly once; repeated, since which thread
// takes which piece depends on timing. An uneven job (the first block slow)
// makes the others take pieces of it.
TEST(ThreadPool, BalancedSplitCoversEveryIndexOnceInContiguousPieces) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 64, 1000, 4099}) {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> empty_pieces{0};
        pool.parallel_for(
            n,
            [&](int64_t begin, int64_t end) {
              if (begin >= end) empty_pieces.fetch_add(1);
              for (int64_t i = begin; i < end; ++i) hits[size_t(i)].fetch_add(1);
            },
            Split::Balanced);
        EXPECT_EQ(empty_pieces.load(), 0);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << threads << " " << n << " " << i;
      }
    }
  }
}

TEST(ThreadPool, BalancedSplitHelpsASlowBlock) {
  ThreadPool pool(2);
  const int64_t n = 64;
  std::vector<std::thread::id> owner(static_cast<size_t>(n));
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          owner[size_t(i)] = std::this_thread::get_id();
          if (i < n / 2) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // the caller's block is slow
        }
      },
      Split::Balanced);
  int64_t by_caller = 0;
  for (const auto& id : owner) by_caller += id == std::this_thread::get_id();
  EXPECT_LT(by_caller, n / 2) << "the worker took none of the slow block";
}

TEST(ThreadPool, CallerRunsTheFirstBlock) {
  ThreadPool pool(3);
  std::thread::id first_block_thread;
  pool.parallel_for(30, [&](int64_t begin, int64_t) {
    if (begin == 0) first_block_thread = std::this_thread::get_id();
  });
  EXPECT_EQ(first_block_thread, std::this_thread::get_id());
}

TEST(ThreadPool, ManyConsecutiveSmallJobs) {
  ThreadPool pool(4);
  std::vector<int64_t> out(64);
  for (int64_t round = 0; round < 5000; ++round) {
    pool.parallel_for(int64_t(out.size()), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[size_t(i)] += i;
    });
  }
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], int64_t(i) * 5000);
}

TEST(ThreadPool, NestedCallRunsSerially) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      pool.parallel_for(10, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) sum += j;
      });
  });
  EXPECT_EQ(sum.load(), 4 * 45);
}

TEST(ThreadPool, ConcurrentCallersBothComplete) {
  ThreadPool pool(2);
  std::atomic<int64_t> a{0}, b{0};
  auto work = [&pool](std::atomic<int64_t>& acc) {
    for (int round = 0; round < 2000; ++round)
      pool.parallel_for(16, [&](int64_t begin, int64_t end) { acc += end - begin; });
  };
  std::thread other([&] { work(b); });
  work(a);
  other.join();
  EXPECT_EQ(a.load(), 2000 * 16);
  EXPECT_EQ(b.load(), 2000 * 16);
}

TEST(ThreadPool, ParallelForDoesNotAllocate) {
  ThreadPool pool(3);
  std::vector<float> v(1000, 1.f);
  auto job = [&v](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) v[size_t(i)] *= 2.f;
  };
  pool.parallel_for(int64_t(v.size()), job);  // warm up
  g_allocs = 0;
  g_count_allocs = true;
  for (int round = 0; round < 100; ++round) pool.parallel_for(int64_t(v.size()), job);
  for (int round = 0; round < 100; ++round) pool.parallel_for(int64_t(v.size()), job, Split::Balanced);
  g_count_allocs = false;
  EXPECT_EQ(g_allocs.load(), 0);
}

TEST(ThreadPool, PhysicalCoreCountIsPlausible) {
  const int n = physical_core_count();
  EXPECT_GE(n, 1);
  if (std::thread::hardware_concurrency() > 0) {
    EXPECT_LE(n, int(std::thread::hardware_concurrency()));
  }
}

TEST(ThreadPool, DefaultPoolFollowsTheSetter) {
  const int before = default_thread_count();
  EXPECT_EQ(default_pool().size(), before);
  set_default_thread_count(3);
  EXPECT_EQ(default_thread_count(), 3);
  EXPECT_EQ(default_pool().size(), 3);
  std::atomic<int64_t> sum{0};
  default_pool().parallel_for(100, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 100);
  set_default_thread_count(0);  // back to the physical core count
  EXPECT_EQ(default_thread_count(), physical_core_count());
  set_default_thread_count(before);
  EXPECT_EQ(default_pool().size(), before);
}

}  // namespace
}  // namespace aviary
