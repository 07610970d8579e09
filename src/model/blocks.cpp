#include "model/blocks.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "io/checkpoint.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "util/thread_pool.h"

namespace aviary {

void layer_norm_rows(const float* x, int64_t T, int64_t n, const Norm& norm, float* out) {
  parallel_rows(T, 4 * n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      ops::layer_norm(x + t * n, n, norm.w.data(), norm.b.data(), kLayerNormEps, out + t * n);
  });
}

void embed_tokens(std::span<const Segment> segments, const ops::Matrix& emb, const Norm& ln0, float* x) {
  const int64_t C = emb.cols;
  for (const Segment& seg : segments)
    for (int64_t t = 0; t < seg.n_rows(); ++t) {
      float* row = x + (seg.first_row + t) * C;
      ops::convert_to_f32(emb.row_ptr(seg.tokens[size_t(t)]), emb.dtype, C, row);
      ops::layer_norm(row, C, ln0.w.data(), ln0.b.data(), kLayerNormEps, row);
    }
}

void shift_tokens(const float* x, int64_t C, std::span<const Segment> segments, size_t state_tensor,
                  float* prev) {
  for (const Segment& seg : segments) {
    const int64_t T = seg.n_rows(), o = seg.first_row * C;
    const std::span<float> state_prev = seg.state->tensor(state_tensor);
    std::copy_n(state_prev.data(), C, prev + o);
    std::copy_n(x + o, (T - 1) * C, prev + o + C);
    std::copy_n(x + o + (T - 1) * C, C, state_prev.data());
  }
}

void head_logits(const float* x, int64_t C, std::span<const LogitsRow> rows, const Norm& ln_out,
                 const ops::Matrix& head, std::vector<float>& scratch) {
  if (rows.empty()) return;
  const int64_t R = int64_t(rows.size()), V = head.rows;
  bool contiguous = true;
  for (int64_t i = 1; i < R; ++i) contiguous = contiguous && rows[size_t(i)].out == rows[0].out + i * V;
  scratch.resize(size_t(R * C + (contiguous ? 0 : R * V)));
  float* normed = scratch.data();
  for (int64_t i = 0; i < R; ++i)
    ops::layer_norm(x + rows[size_t(i)].row * C, C, ln_out.w.data(), ln_out.b.data(), kLayerNormEps,
                    normed + i * C);
  if (contiguous) {
    ops::linear(normed, R, head, rows[0].out);
    return;
  }
  float* logits = normed + R * C;
  ops::linear(normed, R, head, logits);
  for (int64_t i = 0; i < R; ++i) std::copy_n(logits + i * V, V, rows[size_t(i)].out);
}

float* Workspace::get(size_t slot, size_t n) {
  if (bufs_.size() <= slot) bufs_.resize(slot + 1);
  if (bufs_[slot].size() < n) bufs_[slot].resize(n);
  return bufs_[slot].data();
}

bool sparse_ffn_enabled() {
  const char* v = std::getenv("AVIARY_SPARSE_FFN");
  return !(v && std::string_view(v) == "0");
}

FeedForwardValue::FeedForwardValue(const ops::Matrix& value, bool sparse) : value_(value) {
  if (sparse && !dtype_is_quantized(value.dtype)) transposed_ = ops::transpose_copy(value);
}

ops::Matrix FeedForwardValue::read(WeightReader& r, const std::string& name, int64_t rows, int64_t cols) {
  const bool transposes = sparse_ffn_enabled() && !dtype_is_quantized(r.require(name).dtype);
  return transposes ? r.matrix(name, rows, cols) : r.projection(name, rows, cols);
}

namespace {
// Whether the one-token segments should skip zero activations: together they
// read one row of the transposed matrix per nonzero activation, which pays
// while that is at most the whole matrix, what one dense pass over all rows reads.
bool sparse_pays(const float* h, std::span<const Segment> segments, int64_t F) {
  int64_t decode_rows = 0, rows_read = 0;
  for (const Segment& s : segments)
    if (s.n_rows() == 1) {
      ++decode_rows;
      rows_read += ops::count_nonzero(h + s.first_row * F, F);
      if (rows_read > F) return false;
    }
  return decode_rows > 0;
}
}  // namespace

void FeedForwardValue::apply(const float* h, std::span<const Segment> segments, float* out) const {
  const int64_t T = total_rows(segments);
  if (!sparse()) return ops::linear(h, T, value_, out);
  const ops::Matrix& Wt = transposed_.matrix;
  const int64_t F = Wt.rows, C = Wt.cols;
  if (!sparse_pays(h, segments, F)) return ops::linear_in_out(h, T, Wt, out);
  // One-token segments alone; consecutive rows of longer ones in one product.
  int64_t run_first = 0, run_rows = 0;
  auto flush_run = [&] {
    if (run_rows > 0) ops::linear_in_out(h + run_first * F, run_rows, Wt, out + run_first * C);
    run_rows = 0;
  };
  for (const Segment& s : segments) {
    if (s.n_rows() != 1) {
      if (run_rows == 0) run_first = s.first_row;
      run_rows += s.n_rows();
      continue;
    }
    flush_run();
    ops::sparse_rows_sum(h + s.first_row * F, F, Wt, out + s.first_row * C);
  }
  flush_run();
}

void FeedForwardValue::release_original(const Checkpoint& ckpt) const {
  // MappedFile::release ignores a range outside the mapping (a materialised copy).
  if (sparse() && ckpt.file()) ckpt.file()->release(value_.data, size_t(value_.rows) * value_.row_bytes());
}

}  // namespace aviary
