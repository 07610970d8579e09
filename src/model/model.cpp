#include "model/model.h"

#include <algorithm>

#include "model/blocks.h"
#include "model/gguf_rwkv7.h"
#include "model/rwkv4.h"
#include "model/rwkv5_6.h"
#include "model/rwkv7.h"
#include "util/error.h"

namespace aviary {

namespace {

// How errors name what they are about: "forward: " or "forward_batch: item 3: "
// (forward's token error keeps its older form without the prefix). Built only
// when throwing, so a good call allocates nothing.
std::string where(int64_t item) {
  return item < 0 ? "forward: " : "forward_batch: item " + std::to_string(item) + ": ";
}

}  // namespace

void Model::check_tokens(std::span<const int32_t> tokens, int64_t item) const {
  const int64_t V = config_.vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      throw Error((item < 0 ? std::string() : where(item)) + "token id " + std::to_string(tokens[i]) +
                  " at position " + std::to_string(i) + " is outside the model's vocabulary of " +
                  std::to_string(V));
}

void Model::check_state(const State& state, int64_t item) const {
  std::call_once(state_size_once_, [&] { state_size_ = new_state().raw().size(); });
  if (state.raw().size() != state_size_)
    throw Error(where(item) + "the state has " + std::to_string(state.raw().size()) + " floats but this model's has " +
                std::to_string(state_size_) + " (a state of another model?)");
}

void Model::forward(std::span<const int32_t> tokens, State& state, std::vector<float>& logits,
                    bool all_positions) const {
  check_tokens(tokens, -1);
  if (tokens.empty()) throw Error("forward: no tokens given");
  check_state(state, -1);

  const int64_t T = int64_t(tokens.size()), V = config_.vocab_size;
  logits.resize(size_t(all_positions ? T * V : V));
  thread_local std::vector<LogitsRow> rows;
  for (int64_t start = 0; start < T; start += kChunkTokens) {
    const int64_t n = std::min(kChunkTokens, T - start);
    const Segment seg{tokens.subspan(size_t(start), size_t(n)), 0, &state};
    rows.clear();
    if (all_positions)
      for (int64_t t = 0; t < n; ++t) rows.push_back({t, logits.data() + (start + t) * V});
    else if (start + n == T)
      rows.push_back({n - 1, logits.data()});
    forward_pass({{&seg, 1}, rows});
  }
}

namespace {

// Validates a batch; errors name the item.
void check_items(std::span<const Model::BatchItem> items) {
  thread_local std::vector<const State*> states;
  states.clear();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].tokens.empty()) throw Error(where(int64_t(i)) + "no tokens given");
    if (!items[i].state) throw Error(where(int64_t(i)) + "no state given (null)");
    states.push_back(items[i].state);
  }
  std::sort(states.begin(), states.end());
  const auto dup = std::adjacent_find(states.begin(), states.end());
  if (dup == states.end()) return;
  std::vector<size_t> which;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].state == *dup) which.push_back(i);
  throw Error("forward_batch: items " + std::to_string(which[0]) + " and " + std::to_string(which[1]) +
              " share one State; every item needs its own");
}

}  // namespace

void Model::forward_batch(std::span<const BatchItem> items) const {
  check_items(items);
  for (size_t i = 0; i < items.size(); ++i) {
    check_tokens(items[i].tokens, int64_t(i));
    check_state(*items[i].state, int64_t(i));
  }
  const bool decode_only =
      std::all_of(items.begin(), items.end(), [](const BatchItem& it) { return it.tokens.size() == 1; });
  const int64_t max_rows = decode_only ? kDecodeRows : kChunkTokens;

  // Items fill passes in order; one that does not fit continues in the next
  // pass, which runs after this one, so its state sees its tokens in order.
  thread_local std::vector<Segment> segments;
  thread_local std::vector<LogitsRow> rows;
  size_t item = 0, offset = 0;
  while (item < items.size()) {
    segments.clear();
    rows.clear();
    int64_t used = 0;
    while (item < items.size() && used < max_rows) {
      const BatchItem& it = items[item];
      const size_t take = std::min(it.tokens.size() - offset, size_t(max_rows - used));
      segments.push_back({it.tokens.subspan(offset, take), used, it.state});
      used += int64_t(take);
      offset += take;
      if (offset < it.tokens.size()) break;  // the pass is full
      if (it.logits) rows.push_back({used - 1, it.logits});
      ++item;
      offset = 0;
    }
    forward_pass({segments, rows});
  }
}

std::unique_ptr<Model> load_model(const std::string& path) {
  Checkpoint ckpt = Checkpoint::open(path);
  // llama.cpp's rwkv7 GGUF files are read through the official names and shapes.
  if (ckpt.format() == CheckpointFormat::Gguf) ckpt = official_rwkv7_view(ckpt);
  ModelConfig config = detect_config(ckpt);
  switch (config.arch) {
    case Arch::RWKV4: return make_rwkv4(std::move(ckpt), std::move(config));
    case Arch::RWKV5:
    case Arch::RWKV6: return make_rwkv5_6(std::move(ckpt), std::move(config));
    case Arch::RWKV7: return make_rwkv7(std::move(ckpt), std::move(config));
  }
  throw error_in(path, "unsupported architecture: " + config.arch_name());
}

}  // namespace aviary
