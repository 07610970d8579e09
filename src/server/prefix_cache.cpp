#include "server/prefix_cache.h"

#include "server/state_cache.h"

namespace aviary::server {

namespace {

class TieredPrefixCache : public PrefixCache {
 public:
  TieredPrefixCache(const Model& model, StateCacheOptions options) : cache_(model, std::move(options)) {}

  std::optional<std::pair<size_t, State>> lookup(std::span<const std::string> prefixes) override {
    return cache_.lookup(prefixes);
  }
  void store(const std::string& prefix, const State& state) override { cache_.store(prefix, state); }

  std::string metrics_text() const override {
    const StateCacheStats s = cache_.stats();
    std::string out;
    auto line = [&](const char* name, const char* type, const char* help, const std::string& labels, uint64_t v) {
      if (labels.empty() || labels == "tier=\"memory\"")
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      out += std::string(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
    };
    line("aviary_state_cache_lookups_total", "counter", "Prefix state cache lookups.", "", s.lookups);
    line("aviary_state_cache_hits_total", "counter", "Prefix state cache hits, by the tier that held the state.",
         "tier=\"memory\"", s.memory_hits);
    line("aviary_state_cache_hits_total", "counter", "", "tier=\"disk\"", s.disk_hits);
    line("aviary_state_cache_hits_total", "counter", "", "tier=\"redis\"", s.redis_hits);
    line("aviary_state_cache_misses_total", "counter", "Prefix state cache lookups that found nothing.", "", s.misses);
    line("aviary_state_cache_stores_total", "counter", "States stored in the prefix state cache.", "", s.stores);
    line("aviary_state_cache_memory_bytes", "gauge", "Bytes held by the memory tier.", "", s.memory_bytes);
    line("aviary_state_cache_memory_entries", "gauge", "Entries held by the memory tier.", "", s.memory_entries);
    line("aviary_state_cache_evictions_total", "counter", "Memory-tier evictions.", "", s.evictions);
    line("aviary_state_cache_disk_evictions_total", "counter", "Disk-tier evictions.", "", s.disk_evictions);
    line("aviary_state_cache_bad_entries_total", "counter", "Damaged or foreign entries ignored.", "", s.bad_entries);
    line("aviary_state_cache_redis_errors_total", "counter", "Failed Redis commands or connections.", "",
         s.redis_errors);
    return out;
  }

 private:
  StateCache cache_;
};

}  // namespace

std::unique_ptr<PrefixCache> make_state_cache(const Model& model, const PrefixCacheOptions& o) {
  StateCacheOptions options;
  options.memory_bytes = o.memory_bytes;
  options.disk_dir = o.disk_dir;
  options.redis_url = o.redis_url;
  return std::make_unique<TieredPrefixCache>(model, std::move(options));
}

}  // namespace aviary::server
