// The prefix state cache of `aviary serve`. An RNN's whole context is one
// fixed-size state, so the server remembers the state at prompt-prefix
// boundaries (e.g. the end of every chat turn) and starts a new request from
// the longest cached prefix of its prompt: a multi-turn chat only processes
// the new turn.
//
// Tiers, all optional: memory (a byte budget, least recently used out
// first), disk (one file per entry in a directory, survives restarts) and
// Redis (shared by replicas, so any of them continues a conversation another
// began). Stores write through to every tier; a hit in a lower tier is
// copied into the tiers above it. Keys are the SHA-256 of the model's weights
// fingerprint and the prefix, so states of another model never hit; values
// are state files (model/state_file.h), so a damaged or foreign entry is
// detected, counted, and treated as a miss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/state.h"

namespace aviary {

class MemoryStateLru;
class DiskStateStore;
class RedisClient;

struct StateCacheOptions {
  size_t memory_bytes = size_t(1) << 30;  // 0 = memory tier off
  std::string disk_dir;                   // empty = disk tier off
  size_t disk_bytes = 0;                  // 0 = unbounded; else LRU-by-mtime eviction
  std::string redis_url;                  // empty = off; "redis://host:port[/db]" (also "host:port")
  int redis_ttl_seconds = 0;              // 0 = no expiry
  int redis_timeout_ms = 2000;            // connect and command timeout
  // Where warnings go (Redis down, a damaged entry, a failed disk write);
  // null = stderr. Each kind is reported once, not once per request.
  std::function<void(const std::string&)> warn;
};

struct StateCacheStats {
  uint64_t lookups = 0, hits = 0, misses = 0, memory_hits = 0, disk_hits = 0, redis_hits = 0, stores = 0,
           evictions = 0;  // memory-tier evictions
  size_t memory_bytes = 0, memory_entries = 0;
  uint64_t disk_evictions = 0;
  uint64_t bad_entries = 0;   // damaged or foreign disk/Redis entries, ignored
  uint64_t redis_errors = 0;  // failed Redis commands and connection attempts
};

class StateCache {
 public:
  // Throws aviary::Error for a directory that cannot be created or written,
  // or a malformed Redis URL. A Redis that is down is warned about only.
  StateCache(const Model& model, StateCacheOptions options);
  ~StateCache();

  // The longest of `prefixes` (arbitrary byte strings) that any tier holds:
  // its index in `prefixes` and a copy of its state. Memory, then disk, then
  // Redis, longest first. Never throws for a tier's failure.
  std::optional<std::pair<size_t, State>> lookup(std::span<const std::string> prefixes);
  // Stores in every enabled tier. Throws aviary::Error only for a state that
  // does not have the model's layout.
  void store(const std::string& prefix, const State& state);
  StateCacheStats stats() const;

  // The entry key of `prefix`: hex SHA-256 of fingerprint + "\0" + prefix.
  std::string key_of(const std::string& prefix) const;
  // Where the disk tier keeps `prefix` (for tools and tests); empty when off.
  std::string disk_path_of(const std::string& prefix) const;
  // Redis keys are the entry key under this namespace.
  static constexpr const char* kRedisKeyPrefix = "aviary:state:";

 private:
  struct Found;
  std::optional<Found> find_in_memory(const std::vector<std::string>& keys, size_t below);
  std::optional<Found> find_on_disk(const std::vector<std::string>& keys, size_t below);
  std::optional<Found> find_in_redis(const std::vector<std::string>& keys, size_t below);
  std::optional<State> decode(const std::string& bytes, const std::string& key, const char* tier);
  void warn_once(const std::string& kind, const std::string& message);

  const Model& model_;
  StateCacheOptions options_;
  std::string fingerprint_;
  std::unique_ptr<MemoryStateLru> memory_;
  std::unique_ptr<DiskStateStore> disk_;
  std::unique_ptr<RedisClient> redis_;
  mutable std::mutex mutex_;  // guards memory_, stats_ and warned_
  StateCacheStats stats_;
  std::vector<std::string> warned_;
};

}  // namespace aviary
