#include "util/thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace aviary {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

bool read_int(const std::string& path, long& out) {
  std::ifstream f(path);
  return bool(f >> out);
}

}  // namespace

// Decode hands out one small job after another, so a short spin catches the
// next one cheaply; then the thread yields (the machine may have more threads
// than cores) and at last sleeps on a condition variable.
uint32_t ThreadPool::wait_for_change(const std::atomic<uint32_t>& a, uint32_t old,
                                     std::condition_variable& cv) {
  constexpr auto kSpinFor = std::chrono::microseconds(200);
  constexpr auto kYieldFor = std::chrono::microseconds(200);
  auto start = std::chrono::steady_clock::now();
  for (int i = 1;; ++i) {
    const uint32_t v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    cpu_relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() - start > kSpinFor) break;
  }
  start = std::chrono::steady_clock::now();
  do {
    const uint32_t v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    std::this_thread::yield();
  } while (std::chrono::steady_clock::now() - start < kYieldFor);
  std::unique_lock lock(sleep_mutex_);
  cv.wait(lock, [&] { return a.load(std::memory_order_acquire) != old; });
  return a.load(std::memory_order_acquire);
}

void ThreadPool::wake(std::condition_variable& cv) {
  // Taking the mutex orders the change before any sleeper's last check.
  { std::lock_guard lock(sleep_mutex_); }
  cv.notify_all();
}

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads < 1) n_threads = physical_core_count();
  remaining_ = std::make_unique<Remaining[]>(size_t(n_threads));
  workers_.reserve(size_t(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  wake(workers_cv_);
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_block(int index) {
  if (balanced_) return run_pieces(index);
  const int64_t P = size();
  const int64_t begin = n_ * index / P, end = n_ * (index + 1) / P;
  if (begin < end) call_(ctx_, begin, end);
}

namespace {
constexpr uint64_t pack_range(uint64_t lo, uint64_t hi) { return lo << 32 | hi; }
}  // namespace

// The owner takes a quarter of what is left of its block at a time (long
// runs first, small ones at the end, when the threads' progress is known);
// a thread with nothing left of its own takes half of another's rest from
// its back, so owner and helper stream from opposite ends.
void ThreadPool::run_pieces(int index) {
  const int P = size();
  for (int k = 0; k < P; ++k) {
    std::atomic<uint64_t>& r = remaining_[size_t((index + k) % P)].range;
    const bool own = k == 0;
    uint64_t cur = r.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t lo = cur >> 32, hi = cur & 0xffffffffu;
      if (lo >= hi) break;
      const uint64_t take = std::max<uint64_t>(1, (hi - lo) / (own ? 4 : 2));
      const uint64_t begin = own ? lo : hi - take, end = own ? lo + take : hi;
      const uint64_t next = own ? pack_range(end, hi) : pack_range(lo, begin);
      if (!r.compare_exchange_weak(cur, next, std::memory_order_relaxed)) continue;  // cur reloaded
      call_(ctx_, int64_t(begin), int64_t(end));
      cur = r.load(std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_main(int index) {
  // Workers only compute: asynchronous signals (SIGINT, SIGTERM, ...) go to
  // the program's own threads, whatever mask those set before or after the
  // pool was created (it may be created early, e.g. while a model loads).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  uint32_t seen = 0;  // the generation at construction: a job may be published before this thread starts
  for (;;) {
    seen = wait_for_change(generation_, seen, workers_cv_);
    if (stop_.load(std::memory_order_relaxed)) return;
    run_block(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) wake(caller_cv_);
  }
}

void ThreadPool::run(int64_t n, Call call, void* ctx, Split split) {
  if (n <= 0) return;
  // Serial when there is nothing to share, or when the pool is already busy
  // (another thread's call, or a nested call from inside a job).
  if (workers_.empty() || n == 1 || busy_.test_and_set(std::memory_order_acquire)) {
    call(ctx, 0, n);
    return;
  }
  call_ = call;
  ctx_ = ctx;
  n_ = n;
  // Ranges are packed in 32 bits each; a longer loop is split statically.
  balanced_ = split == Split::Balanced && n < (int64_t(1) << 32);
  if (balanced_) {
    const int64_t P = size();
    for (int64_t b = 0; b < P; ++b)
      remaining_[size_t(b)].range.store(pack_range(uint64_t(n * b / P), uint64_t(n * (b + 1) / P)),
                                        std::memory_order_relaxed);
  }
  pending_.store(uint32_t(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  wake(workers_cv_);
  run_block(0);
  for (uint32_t left = pending_.load(std::memory_order_acquire); left != 0;)
    left = wait_for_change(pending_, left, caller_cv_);
  busy_.clear(std::memory_order_release);
}

int physical_core_count() {
  std::set<std::pair<long, long>> cores;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &mask)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      long core = 0, package = 0;
      if (!read_int(dir + "core_id", core) || !read_int(dir + "physical_package_id", package)) {
        cores.clear();  // incomplete topology: trust none of it
        break;
      }
      cores.emplace(package, core);
    }
  }
  if (!cores.empty()) return int(cores.size());
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? int(hc) : 1;
}

namespace {
std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;        // guarded by g_pool_mutex
std::atomic<ThreadPool*> g_pool_ptr{nullptr};
int g_thread_count = 0;                    // 0: not chosen yet; guarded by g_pool_mutex
}  // namespace

ThreadPool& default_pool() {
  if (ThreadPool* p = g_pool_ptr.load(std::memory_order_acquire)) return *p;
  std::lock_guard lock(g_pool_mutex);
  if (!g_pool) {
    if (g_thread_count < 1) g_thread_count = physical_core_count();
    g_pool = std::make_unique<ThreadPool>(g_thread_count);
    g_pool_ptr.store(g_pool.get(), std::memory_order_release);
  }
  return *g_pool;
}

void set_default_thread_count(int n_threads) {
  std::lock_guard lock(g_pool_mutex);
  if (n_threads < 1) n_threads = physical_core_count();
  if (g_pool && g_pool->size() == n_threads) return;
  g_thread_count = n_threads;
  g_pool_ptr.store(nullptr, std::memory_order_release);
  g_pool.reset();  // created again, with the new count, on next use
}

int default_thread_count() {
  std::lock_guard lock(g_pool_mutex);
  if (g_thread_count < 1) g_thread_count = physical_core_count();
  return g_thread_count;
}

}  // namespace aviary
