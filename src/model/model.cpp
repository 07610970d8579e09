#include "model/model.h"

#include <algorithm>

#include "model/rwkv4.h"
#include "model/rwkv5_6.h"
#include "model/rwkv7.h"
#include "util/error.h"

namespace aviary {

void Model::forward(std::span<const int32_t> tokens, State& state, std::vector<float>& logits,
                    bool all_positions) const {
  const int64_t V = config_.vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      throw Error("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                  " is outside the model's vocabulary of " + std::to_string(V));
  if (tokens.empty()) throw Error("forward: no tokens given");

  const int64_t T = int64_t(tokens.size());
  logits.resize(size_t(all_positions ? T * V : V));
  for (int64_t start = 0; start < T; start += kChunkTokens) {
    const int64_t n = std::min(kChunkTokens, T - start);
    const bool last = start + n == T;
    float* out = all_positions ? logits.data() + start * V : (last ? logits.data() : nullptr);
    forward_chunk(tokens.subspan(size_t(start), size_t(n)), state, out, all_positions);
  }
}

std::unique_ptr<Model> load_model(const std::string& path) {
  Checkpoint ckpt = Checkpoint::open(path);
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
