// What the scheduler needs from a prefix state cache: the longest cached
// prefix of a prompt, and storing a state for a prefix. Keys are the
// prompt's text at message boundaries. state_cache.h's StateCache (memory,
// disk and Redis tiers) is used through this, so the scheduler and its
// tests do not depend on which tiers exist.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "model/model.h"
#include "model/state.h"

namespace aviary::server {

class PrefixCache {
 public:
  virtual ~PrefixCache() = default;
  // The index of the longest of `prefixes` held, and its state.
  virtual std::optional<std::pair<size_t, State>> lookup(std::span<const std::string> prefixes) = 0;
  virtual void store(const std::string& prefix, const State& state) = 0;
  // Prometheus text lines for /metrics (hits and misses per tier, bytes, entries).
  virtual std::string metrics_text() const = 0;
};

struct PrefixCacheOptions {
  size_t memory_bytes = size_t(1) << 30;  // 0 = no memory tier
  std::string disk_dir;                   // empty = no disk tier
  std::string redis_url;                  // empty = no Redis tier, e.g. redis://127.0.0.1:6379
};

// The tiered StateCache behind the PrefixCache interface (keys namespaced by
// the model's fingerprint). Throws aviary::Error when a tier cannot start
// (a directory that cannot be created, an unreachable Redis).
std::unique_ptr<PrefixCache> make_state_cache(const Model& model, const PrefixCacheOptions& options);

}  // namespace aviary::server
