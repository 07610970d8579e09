// The disk tier of the prefix state cache: one file per key,
// `<dir>/<key>.avst`, written atomically so a crash never leaves a torn
// entry, and found again after a restart. With a byte budget the least
// recently used files (by modification time, which a hit refreshes) are
// deleted first. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace aviary {

class DiskStateStore {
 public:
  using Warn = std::function<void(const std::string&)>;
  // Creates `dir` if needed; throws aviary::Error naming it if it cannot be
  // created or written. max_bytes 0 = unbounded.
  DiskStateStore(std::string dir, size_t max_bytes, Warn warn);

  // The entry's bytes (and it becomes the most recently used), or nothing
  // when there is no entry or it cannot be read.
  std::optional<std::string> get(const std::string& key);
  bool contains(const std::string& key) const;
  // Writes (or replaces) the entry, then evicts down to the budget. Failures
  // (disk full, directory removed) are warned about, never thrown: the cache
  // is an optimisation and a request must not fail because of it.
  void put(const std::string& key, std::string_view bytes);
  void remove(const std::string& key);

  std::string path_of(const std::string& key) const { return dir_ + "/" + key + kSuffix; }
  uint64_t evictions() const;

  static constexpr const char* kSuffix = ".avst";

 private:
  void evict_to_budget();  // with write_mutex_ held
  uint64_t scan_bytes() const;

  std::string dir_;
  size_t max_bytes_;
  Warn warn_;
  // AtomicFile's temporary name is per process, so two threads must not
  // write the same key at once; the running total is guarded too.
  mutable std::mutex write_mutex_;
  uint64_t bytes_ = 0;  // an estimate between scans, exact after each
  uint64_t evictions_ = 0;
};

}  // namespace aviary
