// A persistent pool of worker threads for data-parallel loops.
//
// The workers are created once and wait for work; parallel_for(n, fn) splits
// [0, n) into one contiguous block per thread, runs the first block on the
// calling thread and the others on the workers, and returns when every block
// is done. A call allocates nothing.
//
// Split::Balanced is for memory-bound loops (decode's matrix-vector
// products), where two threads streaming from memory rarely finish their
// equal blocks together: each thread takes its block piece by piece, then
// takes pieces from the far end of the blocks others have not finished.
//
// Worker threads block every asynchronous signal, so signals reach only the
// program's own threads.
//
// Threading contract: parallel_for is meant to be called from one thread at a
// time. It stays correct when it is not: a call made while the pool is busy
// (from another thread, or from inside `fn` on a worker) runs its whole range
// serially on the calling thread. `fn` must not throw.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace aviary {

// How parallel_for hands out [0, n): Static, fn(begin, end) once per
// thread on block b of P, [n*b/P, n*(b+1)/P); Balanced, fn on smaller
// disjoint contiguous pieces, several per thread, that cover [0, n) once.
enum class Split { Static, Balanced };

class ThreadPool {
 public:
  // `n_threads` counts the calling thread: 1 runs everything inline with no
  // workers; values below 1 mean physical_core_count().
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads that share a parallel_for: the workers plus the caller.
  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n), as
  // `split` says; empty ranges are skipped.
  template <class Fn>
  void parallel_for(int64_t n, Fn&& fn, Split split = Split::Static) {
    using F = std::remove_reference_t<Fn>;
    run(n, [](void* ctx, int64_t begin, int64_t end) { (*static_cast<F*>(ctx))(begin, end); },
        const_cast<void*>(static_cast<const void*>(&fn)), split);
  }

 private:
  using Call = void (*)(void* ctx, int64_t begin, int64_t end);

  // What is left of one thread's block in a balanced split: [lo, hi) packed
  // as lo << 32 | hi, so that taking from either end is one compare-exchange.
  struct alignas(64) Remaining {
    std::atomic<uint64_t> range{0};
  };

  void run(int64_t n, Call call, void* ctx, Split split);
  void worker_main(int index);
  void run_block(int index);
  // Balanced split: pieces of block `index` from its front, then of the
  // others' from their back.
  void run_pieces(int index);
  // Waits until `a` differs from `old`, sleeping on `cv` in the end; returns the new value.
  uint32_t wait_for_change(const std::atomic<uint32_t>& a, uint32_t old, std::condition_variable& cv);
  // Wakes the threads sleeping on `cv` after a change they wait for.
  void wake(std::condition_variable& cv);

  std::vector<std::thread> workers_;
  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  // The current job, published by the release increment of generation_.
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  bool balanced_ = false;
  std::unique_ptr<Remaining[]> remaining_;  // one per thread
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> pending_{0};  // workers still running the current job
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable workers_cv_, caller_cv_;
};

// Physical cores this process may run on: distinct (package, core) pairs of
// the CPUs in its affinity mask, read from /sys/devices/system/cpu; falls back
// to std::thread::hardware_concurrency() (and at least 1).
int physical_core_count();

// The pool the kernels use, created on first use with
// default_thread_count() threads.
ThreadPool& default_pool();

// Sets the default pool's thread count (below 1: physical_core_count()),
// replacing the pool. Call it only while no parallel_for is running, and
// before handing default_pool() references to other threads.
void set_default_thread_count(int n_threads);

// The thread count default_pool() has or will be created with.
int default_thread_count();

// fn(begin, end) over blocks of [0, rows) on the default pool, or in one call
// on the calling thread when rows * cost_per_row is below about 64K (a
// hand-off would cost more than it saves): for prefill's per-token loops,
// which decode (one row) keeps serial. Each row must be independent of the others.
template <class Fn>
void parallel_rows(int64_t rows, int64_t cost_per_row, Fn&& fn) {
  if (rows <= 0) return;
  if (rows == 1 || rows * cost_per_row < (int64_t(1) << 16)) return fn(int64_t(0), rows);
  default_pool().parallel_for(rows, fn);
}

}  // namespace aviary
