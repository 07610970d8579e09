// Counters and gauges for GET /metrics, in the Prometheus text format.
// Updated from the engine thread and the HTTP threads, so all atomic (the
// per-route request counts take a lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace aviary::server {

class ServerMetrics {
 public:
  // HTTP side.
  void count_request(const std::string& route, int status);

  // Engine side.
  std::atomic<int64_t> prompt_tokens{0};        // prompt tokens of admitted requests (cached included)
  std::atomic<int64_t> prefilled_tokens{0};     // prompt tokens actually fed to the model
  std::atomic<int64_t> cached_tokens{0};        // prompt tokens skipped thanks to the cache
  std::atomic<int64_t> completion_tokens{0};
  std::atomic<int64_t> cache_hits{0}, cache_misses{0}, cache_stores{0};
  std::atomic<int64_t> finished{0}, cancelled{0}, failed{0};
  std::atomic<int64_t> steps{0}, step_rows{0};  // forward passes and the rows they carried
  std::atomic<int64_t> queue_length{0};         // waiting for a place in the batch
  std::atomic<int64_t> running{0};              // sequences in the batch
  std::atomic<int64_t> last_batch_size{0};      // sequences in the last forward pass
  std::atomic<int64_t> max_batch_size{0};       // the most sequences in one pass so far

  // The whole exposition; `extra` (e.g. the cache's tier lines) is appended.
  std::string prometheus_text(const std::string& extra) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
};

}  // namespace aviary::server
