// A loaded model: immutable weights plus the forward pass of its architecture.
// The recurrent state is separate (model/state.h), so one model serves any
// number of independent states.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/config.h"
#include "model/state.h"

namespace aviary {

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return ckpt_; }

  // The zero state of this model, in the official layout.
  virtual State new_state() const = 0;

  // Feeds `tokens` starting from `state`, which is updated in place. Writes
  // the logits of the last position ([V]) to `logits`, or of every position
  // ([T, V]) when `all_positions` is set. A prompt is processed in chunks
  // with matrix-matrix products (sequence mode); calling this once per token
  // is the RNN mode, and both give the same numbers.
  void forward(std::span<const int32_t> tokens, State& state, std::vector<float>& logits,
               bool all_positions = false) const;

  // Tokens per sequence-mode chunk (bounds scratch memory for long prompts).
  static constexpr int64_t kChunkTokens = 128;

 protected:
  Model(Checkpoint ckpt, ModelConfig config) : ckpt_(std::move(ckpt)), config_(std::move(config)) {}

  // One chunk. `logits` receives T rows when all_positions, else one row
  // for the last token, or nothing when null (a chunk before the last).
  virtual void forward_chunk(std::span<const int32_t> tokens, State& state, float* logits,
                             bool all_positions) const = 0;

 private:
  friend std::string model_fingerprint(const Model& model);  // model/state_file.h

  Checkpoint ckpt_;
  ModelConfig config_;
  // Computed on first use by model_fingerprint(): sampling a 15 GB file on
  // every state save would touch thousands of pages each time.
  mutable std::once_flag fingerprint_once_;
  mutable std::string fingerprint_;
};

// Opens a `.pth` or `.safetensors` checkpoint, detects its architecture and
// builds the model. Errors name the file and what is wrong.
std::unique_ptr<Model> load_model(const std::string& path);

}  // namespace aviary
