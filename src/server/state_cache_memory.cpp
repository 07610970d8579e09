#include "server/state_cache_memory.h"

namespace aviary {

std::optional<State> MemoryStateLru::get(const std::string& key) {
  const auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, found->second);
  return found->second->state;
}

void MemoryStateLru::erase(std::list<Entry>::iterator it) {
  bytes_ -= it->bytes;
  index_.erase(it->key);
  order_.erase(it);
}

void MemoryStateLru::put(const std::string& key, const State& state) {
  if (const auto found = index_.find(key); found != index_.end()) erase(found->second);
  const size_t bytes = cost(key, state);
  if (bytes > max_bytes_) return;
  while (bytes_ + bytes > max_bytes_) {
    erase(std::prev(order_.end()));
    ++evictions_;
  }
  order_.push_front(Entry{key, state, bytes});
  index_[key] = order_.begin();
  bytes_ += bytes;
}

}  // namespace aviary
