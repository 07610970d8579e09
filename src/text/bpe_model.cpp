#include "text/bpe_model.h"

#include <cstdio>
#include <functional>
#include <queue>

#include "util/error.h"

namespace aviary {
namespace {

// Words repeat a lot in text, so their tokens are remembered. The cache
// stops growing at this many words (as HF's does) to bound its memory, and
// very long words (rare, and costly to keep) are not cached.
constexpr size_t kCacheCapacity = 1 << 16;
constexpr size_t kMaxCachedWordBytes = 256;

uint64_t pair_key(int32_t left, int32_t right) { return uint64_t(uint32_t(left)) << 32 | uint32_t(right); }

// Lets the cache be searched with a string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// A merge that was possible when it was queued; it may be stale when popped.
struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t result;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, or -1
  int32_t next;  // index of the next live symbol, or -1
};

}  // namespace

struct BpeModel::Cache {
  std::mutex mutex;  // encode is const and may run on several threads
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
};

BpeModel::BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<Merge>& merges, int32_t unk_id,
                   bool fuse_unk)
    : byte_ids_(byte_ids), unk_id_(unk_id), fuse_unk_(fuse_unk), cache_(std::make_unique<Cache>()) {
  rules_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    rules_.try_emplace(pair_key(m.left, m.right), Rule{int32_t(rank), m.result});  // a repeated pair keeps its first rank
  }
}

BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

const BpeModel::Rule* BpeModel::find_rule(int32_t left, int32_t right) const {
  const auto it = rules_.find(pair_key(left, right));
  return it == rules_.end() ? nullptr : &it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxCachedWordBytes) {
    const std::vector<int32_t> ids = merge_word(word);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  {
    std::lock_guard lock(cache_->mutex);
    const auto it = cache_->words.find(word);
    if (it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(word);  // outside the lock: other threads need not wait
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_->mutex);
  if (cache_->words.size() < kCacheCapacity) cache_->words.try_emplace(std::string(word), std::move(ids));
}

std::vector<int32_t> BpeModel::initial_symbols(std::string_view word) const {
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  for (const char c : word) {
    const int32_t id = byte_ids_[uint8_t(c)];
    if (id >= 0) {
      ids.push_back(id);
    } else if (unk_id_ < 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", unsigned(uint8_t(c)));
      throw Error(std::string("cannot encode the byte ") + hex +
                  ": the vocabulary has no token for it and no unk_token (valid UTF-8 text never has it)");
    } else if (!(fuse_unk_ && !ids.empty() && ids.back() == unk_id_)) {
      ids.push_back(unk_id_);
    }
  }
  return ids;
}

// Applies merges lowest rank first, leftmost first among equal ranks. Symbols
// form a linked list so a merge is O(1); a heap holds the candidate merges,
// and a candidate whose symbols have changed since it was queued is skipped.
std::vector<int32_t> BpeModel::merge_word(std::string_view word) const {
  const std::vector<int32_t> ids = initial_symbols(word);
  const auto n = int32_t(ids.size());
  std::vector<Symbol> sym(n);
  for (int32_t i = 0; i < n; ++i) sym[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1};

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int32_t left) {
    if (left < 0 || sym[left].next < 0) return;
    if (const Rule* r = find_rule(sym[left].id, sym[sym[left].next].id)) queue.push({r->rank, left, r->result});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = sym[c.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or nothing on the right any more
    const Rule* now = find_rule(left.id, sym[left.next].id);
    if (now == nullptr || now->rank != c.rank || now->result != c.result) continue;  // stale
    Symbol& right = sym[left.next];
    left.id = c.result;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    right.id = -1;
    consider(left.prev);
    consider(c.pos);
  }

  std::vector<int32_t> out;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
  return out;
}

}  // namespace aviary
