// Building blocks shared by every RWKV generation. They work on the T rows of
// one forward pass at once ([T, C] row-major activations). The rows are split
// into segments, each a run of consecutive tokens of one sequence with its own
// State: one segment of one row is the RNN step, one longer segment a
// sequence-mode chunk, many segments a batch of independent sequences.
// Row-wise work (norms, matrix products, activations) runs over all T rows;
// token shift and the WKV recurrences run per segment on its state. A
// version's forward pass is composed from these and differs only where its
// math differs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/state.h"
#include "ops/matrix.h"
#include "ops/sparse_ffn.h"
#include "util/thread_pool.h"

namespace aviary {

class Checkpoint;

// One sequence's rows in a pass: `tokens` fill rows [first_row, first_row +
// tokens.size()) and advance `state` in order.
struct Segment {
  std::span<const int32_t> tokens;
  int64_t first_row = 0;
  State* state = nullptr;

  int64_t n_rows() const { return int64_t(tokens.size()); }
};

// A row whose logits are wanted, and where its [V] logits go.
struct LogitsRow {
  int64_t row = 0;
  float* out = nullptr;
};

// One forward pass: segments in row order covering rows [0, T), and the rows
// that go through the head.
struct ForwardPass {
  std::span<const Segment> segments;
  std::span<const LogitsRow> logits;
};

// T of a pass: the rows its segments cover.
inline int64_t total_rows(std::span<const Segment> segments) {
  return segments.empty() ? 0 : segments.back().first_row + segments.back().n_rows();
}

// Runs fn(segment) for every segment. When there are several and the work is
// large enough to pay for waking threads (rows x `work_per_row` multiply-adds,
// the kernels' own threshold), they are shared out over the default thread
// pool and the kernels inside run serially (see util/thread_pool.h); a single
// segment runs on the calling thread so its kernels can use the pool
// themselves. Each segment touches only its own state and rows, so the result
// does not depend on how they are scheduled.
constexpr int64_t kParallelWork = int64_t(1) << 18;

template <class Fn>
void for_each_segment(std::span<const Segment> segments, int64_t work_per_row, Fn&& fn) {
  if (segments.size() == 1 || total_rows(segments) * work_per_row < kParallelWork) {
    for (const Segment& s : segments) fn(s);
    return;
  }
  default_pool().parallel_for(int64_t(segments.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(segments[size_t(i)]);
  });
}

// The rows a layer's output is needed for: all T of a pass, or (the last
// layer's channel mix) only those that go through the head, increasing. The
// channel mix is row by row, so computing a subset gives those rows' values
// bit for bit, while its token shift still advances every segment's state.
class OutputRows {
 public:
  static OutputRows all(int64_t T) { return OutputRows(T, {}, true); }
  // `rows` (increasing, each below T; may be empty) must outlive this object.
  static OutputRows only(int64_t T, std::span<const int64_t> rows) { return OutputRows(T, rows, false); }

  bool is_all() const { return all_; }
  int64_t count() const { return all_ ? total_ : int64_t(subset_.size()); }
  // Row of the pass that output i stands for.
  int64_t operator[](int64_t i) const { return all_ ? i : subset_[size_t(i)]; }
  // One-row segments standing for the outputs (output i at row i of a
  // compact [count, ...] buffer), each with its row's token and state: for
  // the kernels that treat a lone row (decode) differently. Valid until the
  // next call on this thread.
  std::span<const Segment> as_segments(std::span<const Segment> segments) const;

 private:
  OutputRows(int64_t T, std::span<const int64_t> rows, bool all) : subset_(rows), total_(T), all_(all) {}
  std::span<const int64_t> subset_;
  int64_t total_ = 0;
  bool all_ = true;
};

// A LayerNorm's fp32 weight and bias.
struct Norm {
  std::vector<float> w, b;
};

constexpr float kLayerNormEps = 1e-5f;  // torch.nn.functional.layer_norm default

// out[t] = LayerNorm(x[t]) for T rows of n. `out` may alias `x`.
void layer_norm_rows(const float* x, int64_t T, int64_t n, const Norm& norm, float* out);

// Embedding rows for every segment's tokens, then ln0 (the official loader
// folds ln0 into the embedding; doing it per token is the same fp32 math
// without a copy).
void embed_tokens(std::span<const Segment> segments, const ops::Matrix& emb, const Norm& ln0, float* x);

// Token shift per segment: prev[t] = x[t-1] within the segment, its first row
// takes the last input kept in tensor `state_tensor` of the segment's state,
// which then keeps the segment's last row for the next pass.
void shift_tokens(const float* x, int64_t C, std::span<const Segment> segments, size_t state_tensor,
                  float* prev);

// Logits of the selected rows: ln_out, then the head, all rows in one matrix
// product. Written in place when the outputs are one contiguous [R, V] block
// (forward()'s case), else through `scratch` and copied out.
void head_logits(const float* x, int64_t C, std::span<const LogitsRow> rows, const Norm& ln_out,
                 const ops::Matrix& head, std::vector<float>& scratch);

// Scratch buffers reused across calls: `get(i, n)` returns buffer i with at
// least n floats, growing it only when a larger chunk arrives.
class Workspace {
 public:
  float* get(size_t slot, size_t n);

 private:
  std::vector<std::vector<float>> bufs_;
};

// Whether models loaded now use the sparse feed-forward (FeedForwardValue):
// yes unless the environment variable AVIARY_SPARSE_FFN is "0", so benchmarks
// can compare. Read at every call; models built earlier keep their choice.
bool sparse_ffn_enabled();

// The value matrix of a squared-ReLU feed-forward: out = value . h with
// h = relu(key . x)^2, value [C, F] stored [out, in] as nn.Linear keeps it.
//
// Sparse (a float matrix in the kernels' panels, value.packed, with
// sparse_ffn_enabled()): one-token segments (decode) read only the weights of
// their nonzero activations (ops::sparse_linear); longer segments take
// ops::linear on the same panels. Both sum each output in the same order, so
// rows give the same numbers whichever path they take. Dense otherwise
// (sparse off, block-quantized q8_0/q4_0/q4_k..., or a CPU target without
// panels): ops::linear.
class FeedForwardValue {
 public:
  FeedForwardValue() = default;
  explicit FeedForwardValue(const ops::Matrix& value, bool sparse = sparse_ffn_enabled());

  bool sparse() const { return sparse_; }

  // out [T, C] = h [T, F] times value^T, T = total_rows(segments). Returns
  // the bytes of the value matrix this pass did not read, against one dense
  // product (which reads it all once): zero on the dense path; negative when
  // scattered one-token rows and dense runs of longer segments together read
  // more. For Model::weight_bytes_skipped().
  int64_t apply(const float* h, std::span<const Segment> segments, float* out) const;

 private:
  ops::Matrix value_;  // [C, F]
  bool sparse_ = false;
};

}  // namespace aviary
