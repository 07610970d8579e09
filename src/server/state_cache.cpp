#include "server/state_cache.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "model/state_file.h"
#include "server/state_cache_disk.h"
#include "server/state_cache_memory.h"
#include "server/state_cache_redis.h"
#include "util/error.h"

namespace aviary {

namespace {

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw Error("state cache: SHA-256 failed (OpenSSL)");
  static const char* const kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

// Indices of `prefixes`, longest first (equal lengths keep their order).
std::vector<size_t> longest_first(std::span<const std::string> prefixes) {
  std::vector<size_t> order(prefixes.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return prefixes[a].size() > prefixes[b].size(); });
  return order;
}

enum class Tier { kMemory, kDisk, kRedis };

}  // namespace

// A hit: its rank in longest-first order, the state, and (from disk or
// Redis) the entry's bytes, for copying it into the tiers above.
struct StateCache::Found {
  size_t rank;
  State state;
  Tier tier;
  std::string bytes;
};

StateCache::StateCache(const Model& model, StateCacheOptions options)
    : model_(model), options_(std::move(options)), fingerprint_(model_fingerprint(model)) {
  if (!options_.warn)
    options_.warn = [](const std::string& message) { std::fprintf(stderr, "aviary: warning: %s\n", message.c_str()); };
  if (options_.memory_bytes) memory_ = std::make_unique<MemoryStateLru>(options_.memory_bytes);
  if (!options_.disk_dir.empty())
    disk_ = std::make_unique<DiskStateStore>(options_.disk_dir, options_.disk_bytes,
                                             [this](const std::string& m) { warn_once("disk write", m); });
  if (!options_.redis_url.empty()) {
    RedisAddress address = parse_redis_url(options_.redis_url);
    if (options_.redis_timeout_ms <= 0)
      throw error_in(options_.redis_url,
                     "the Redis timeout must be positive, not " + std::to_string(options_.redis_timeout_ms) + " ms");
    redis_ = std::make_unique<RedisClient>(std::move(address), std::chrono::milliseconds(options_.redis_timeout_ms),
                                           options_.warn);
  }
}

StateCache::~StateCache() = default;

std::string StateCache::key_of(const std::string& prefix) const {
  std::string keyed = fingerprint_;
  keyed += '\0';
  keyed += prefix;
  return sha256_hex(keyed);
}

std::string StateCache::disk_path_of(const std::string& prefix) const {
  return disk_ ? disk_->path_of(key_of(prefix)) : std::string();
}

void StateCache::warn_once(const std::string& kind, const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    if (std::find(warned_.begin(), warned_.end(), kind) != warned_.end()) return;
    warned_.push_back(kind);
  }
  options_.warn(message + " (further ones are not reported)");
}

std::optional<State> StateCache::decode(const std::string& bytes, const std::string& key, const char* tier) {
  try {
    return parse_state_file(bytes, model_, std::string("state cache ") + tier + " entry " + key);
  } catch (const Error& e) {
    {
      std::lock_guard lock(mutex_);
      ++stats_.bad_entries;
    }
    warn_once(std::string("bad ") + tier + " entry", std::string("ignoring a damaged or foreign entry: ") + e.what());
    return std::nullopt;
  }
}

std::optional<StateCache::Found> StateCache::find_in_memory(const std::vector<std::string>& keys, size_t below) {
  std::lock_guard lock(mutex_);
  for (size_t rank = 0; rank < below; ++rank)
    if (auto state = memory_->get(keys[rank])) return Found{rank, std::move(*state), Tier::kMemory, {}};
  return std::nullopt;
}

std::optional<StateCache::Found> StateCache::find_on_disk(const std::vector<std::string>& keys, size_t below) {
  for (size_t rank = 0; rank < below; ++rank) {
    if (!disk_->contains(keys[rank])) continue;
    auto bytes = disk_->get(keys[rank]);
    if (!bytes) continue;
    if (auto state = decode(*bytes, keys[rank], "disk")) return Found{rank, std::move(*state), Tier::kDisk, {}};
    disk_->remove(keys[rank]);  // the next store of this prefix writes a good one
  }
  return std::nullopt;
}

std::optional<StateCache::Found> StateCache::find_in_redis(const std::vector<std::string>& keys, size_t below) {
  std::vector<std::string> redis_keys;
  for (size_t rank = 0; rank < below; ++rank) redis_keys.push_back(kRedisKeyPrefix + keys[rank]);
  const std::vector<bool> present = redis_->exists(redis_keys);  // one round trip for all candidates
  for (size_t rank = 0; rank < below; ++rank) {
    if (!present[rank]) continue;
    auto bytes = redis_->get(redis_keys[rank]);
    if (!bytes) continue;  // expired meanwhile, or Redis went away
    if (auto state = decode(*bytes, keys[rank], "Redis"))
      return Found{rank, std::move(*state), Tier::kRedis, std::move(*bytes)};
    redis_->del(redis_keys[rank]);
  }
  return std::nullopt;
}

std::optional<std::pair<size_t, State>> StateCache::lookup(std::span<const std::string> prefixes) {
  const std::vector<size_t> order = longest_first(prefixes);
  std::vector<std::string> keys;
  for (size_t i : order) keys.push_back(key_of(prefixes[i]));

  // Each lower tier is asked only for prefixes longer than the best hit so far.
  std::optional<Found> best;
  auto below = [&] { return best ? best->rank : keys.size(); };
  if (memory_) best = find_in_memory(keys, below());
  if (disk_ && below() > 0)
    if (auto found = find_on_disk(keys, below())) best = std::move(found);
  if (redis_ && below() > 0)
    if (auto found = find_in_redis(keys, below())) best = std::move(found);

  if (best && best->tier == Tier::kRedis && disk_) disk_->put(keys[best->rank], best->bytes);
  std::lock_guard lock(mutex_);
  ++stats_.lookups;
  if (!best) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.hits;
  switch (best->tier) {
    case Tier::kMemory: ++stats_.memory_hits; break;
    case Tier::kDisk: ++stats_.disk_hits; break;
    case Tier::kRedis: ++stats_.redis_hits; break;
  }
  if (memory_ && best->tier != Tier::kMemory) memory_->put(keys[best->rank], best->state);
  return std::make_pair(order[best->rank], std::move(best->state));
}

void StateCache::store(const std::string& prefix, const State& state) {
  if (!state.same_layout(model_.new_state()))
    throw Error("state cache: cannot store a state that does not have the layout of " + model_.checkpoint().path());
  const std::string key = key_of(prefix);
  {
    std::lock_guard lock(mutex_);
    ++stats_.stores;
    if (memory_) memory_->put(key, state);
  }
  if (!disk_ && !redis_) return;
  const std::string bytes = serialize_state_file(model_, state);
  if (disk_) disk_->put(key, bytes);
  if (redis_) redis_->set(kRedisKeyPrefix + key, bytes, options_.redis_ttl_seconds);
}

StateCacheStats StateCache::stats() const {
  StateCacheStats s;
  {
    std::lock_guard lock(mutex_);
    s = stats_;
    if (memory_) {
      s.evictions = memory_->evictions();
      s.memory_bytes = memory_->bytes();
      s.memory_entries = memory_->entries();
    }
  }
  if (disk_) s.disk_evictions = disk_->evictions();
  if (redis_) s.redis_errors = redis_->errors();
  return s;
}

}  // namespace aviary
