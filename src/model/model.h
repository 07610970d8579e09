// A loaded model: immutable weights plus the forward pass of its architecture.
// The recurrent state is separate (model/state.h), so one model serves any
// number of independent states.
#pragma once

#include <atomic>
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

struct ForwardPass;  // model/blocks.h: the rows of one pass, split by sequence

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

  // One sequence's part of a batched forward pass.
  struct BatchItem {
    std::span<const int32_t> tokens;  // at least one token, fed to `state` in order
    State* state = nullptr;           // this sequence's state, updated in place
    float* logits = nullptr;          // receives the [V] logits after its last token, or null
  };
  // Advances every item's state by its tokens in one pass over the weights: the rows
  // of all items go through each matrix product together (chunked internally to bound
  // scratch memory). Each item's state and logits are bit for bit what
  // forward(item.tokens, *item.state, ...) alone gives. States must be distinct.
  void forward_batch(std::span<const BatchItem> items) const;

  // Tokens per sequence-mode chunk (bounds scratch memory for long prompts;
  // llama.cpp's default micro-batch too). Each chunk reads every weight once,
  // so 512 over 128 made pp512 5-17% faster (0.1B f16, 0.4B q8_0, 1.5B q4_0)
  // for ~30-80 MiB more scratch. A pass of a batch holds at most this many
  // rows, unless every item is a single token (a decode batch), which may take
  // up to kDecodeRows.
  static constexpr int64_t kChunkTokens = 512;
  static constexpr int64_t kDecodeRows = 256;

  // Bytes of weights the forward passes so far did not read, against each
  // pass reading every weight once: the sparse feed-forward skips the value
  // columns of zero activations in decode (model/blocks.h FeedForwardValue).
  // aviary bench subtracts it to rate the bytes actually read. Counted over
  // every thread's passes.
  int64_t weight_bytes_skipped() const { return weight_bytes_skipped_.load(std::memory_order_relaxed); }

  // Bytes by which the copies of the weights the kernels read differ from
  // the stored tensors (WeightReader::packed_bytes_delta): what a pass reads
  // is the stored size plus this. Negative where f32 weights are held as bf16.
  int64_t packed_weight_bytes_delta() const { return packed_weight_bytes_delta_; }

 protected:
  Model(Checkpoint ckpt, ModelConfig config) : ckpt_(std::move(ckpt)), config_(std::move(config)) {}

  // One pass: every segment's tokens advance its state; the logits rows go
  // through the head. forward() and forward_batch() both come down to this.
  virtual void forward_pass(const ForwardPass& pass) const = 0;

  void set_packed_weight_bytes_delta(int64_t bytes) { packed_weight_bytes_delta_ = bytes; }

  void count_skipped_weight_bytes(int64_t bytes) const {
    if (bytes != 0) weight_bytes_skipped_.fetch_add(bytes, std::memory_order_relaxed);
  }

 private:
  friend std::string model_fingerprint(const Model& model);  // model/state_file.h

  // Errors for a token id outside the vocabulary, or a state of another size;
  // `item` is the batch item they name, or -1 for forward().
  void check_tokens(std::span<const int32_t> tokens, int64_t item) const;
  void check_state(const State& state, int64_t item) const;

  Checkpoint ckpt_;
  ModelConfig config_;
  // Computed on first use by model_fingerprint(): sampling a 15 GB file on
  // every state save would touch thousands of pages each time.
  mutable std::once_flag fingerprint_once_;
  mutable std::string fingerprint_;
  // The float count of new_state(), computed once for check_state().
  mutable std::once_flag state_size_once_;
  mutable size_t state_size_ = 0;
  mutable std::atomic<int64_t> weight_bytes_skipped_{0};
  int64_t packed_weight_bytes_delta_ = 0;
};

// The batch item by its short name too (aviary::BatchItem).
using BatchItem = Model::BatchItem;

// Opens a `.pth` or `.safetensors` checkpoint, detects its architecture and
// builds the model. Errors name the file and what is wrong.
std::unique_ptr<Model> load_model(const std::string& path);

}  // namespace aviary
