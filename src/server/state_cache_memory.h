// The memory tier of the prefix state cache: states by key, least recently
// used first out when their bytes (state floats + key) pass a budget. Not
// thread-safe on its own: StateCache holds its lock around every call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "model/state.h"

namespace aviary {

class MemoryStateLru {
 public:
  explicit MemoryStateLru(size_t max_bytes) : max_bytes_(max_bytes) {}

  // A copy of the state at `key`, which becomes the most recently used.
  std::optional<State> get(const std::string& key);
  bool contains(const std::string& key) const { return index_.count(key) != 0; }
  // Inserts or replaces, then evicts from the least recently used end until
  // the budget holds. A state larger than the whole budget is not kept.
  void put(const std::string& key, const State& state);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }

  static size_t cost(const std::string& key, const State& state) {
    return key.size() + state.raw().size() * sizeof(float);
  }

 private:
  struct Entry {
    std::string key;
    State state;
    size_t bytes;
  };
  void erase(std::list<Entry>::iterator it);

  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t evictions_ = 0;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace aviary
