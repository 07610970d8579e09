#include "model/blocks.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "io/checkpoint.h"
#include "ops/float_panels.h"
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

std::span<const Segment> OutputRows::as_segments(std::span<const Segment> segments) const {
  if (all_) return segments;
  thread_local std::vector<Segment> out;
  out.clear();
  size_t s = 0;
  for (size_t i = 0; i < subset_.size(); ++i) {
    const int64_t row = subset_[i];
    while (segments[s].first_row + segments[s].n_rows() <= row) ++s;
    const Segment& seg = segments[s];
    out.push_back({seg.tokens.subspan(size_t(row - seg.first_row), 1), int64_t(i), seg.state});
  }
  return out;
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

FeedForwardValue::FeedForwardValue(const ops::Matrix& value, bool sparse)
    : value_(value), sparse_(sparse && value.packed && !dtype_is_quantized(value.dtype)) {}

namespace {
// Whether the one-token segments should skip zero activations: together they
// read the panel columns of their nonzero activations, scattered, while one
// dense pass streams all F columns once for every row. Scattered reads go at
// about a third of the streaming speed (kernels_bench FfnValue, 2048 x 7168
// f16: 50% zeros 1.07 ms sparse vs 0.69 ms dense; 90% zeros 0.11 ms), so
// sparse pays below a third of the columns.
// Returns the columns the one-token rows read together (their nonzero
// activations), or -1 when the sparse path does not pay or no row is alone.
int64_t sparse_columns(const float* h, std::span<const Segment> segments, int64_t F) {
  int64_t decode_rows = 0, columns_read = 0;
  for (const Segment& s : segments)
    if (s.n_rows() == 1) {
      ++decode_rows;
      columns_read += ops::count_nonzero(h + s.first_row * F, F);
      if (3 * columns_read > F) return -1;
    }
  return decode_rows > 0 ? columns_read : -1;
}
}  // namespace

int64_t FeedForwardValue::apply(const float* h, std::span<const Segment> segments, float* out) const {
  const int64_t T = total_rows(segments), C = value_.rows, F = value_.cols;
  int64_t columns_read = sparse_ ? sparse_columns(h, segments, F) : -1;
  if (columns_read < 0) {
    ops::linear(h, T, value_, out);
    return 0;
  }
  // One-token segments alone; consecutive rows of longer ones in one product,
  // which reads every column.
  int64_t run_first = 0, run_rows = 0;
  auto flush_run = [&] {
    if (run_rows > 0) {
      ops::linear(h + run_first * F, run_rows, value_, out + run_first * C);
      columns_read += F;
    }
    run_rows = 0;
  };
  for (const Segment& s : segments) {
    if (s.n_rows() != 1) {
      if (run_rows == 0) run_first = s.first_row;
      run_rows += s.n_rows();
      continue;
    }
    flush_run();
    ops::sparse_linear(h + s.first_row * F, F, value_, out + s.first_row * C);
  }
  flush_run();
  // Against one dense product; negative if the pass read more. The sparse
  // path holds only plain float types, so a column is C elements of the
  // panels' type (bf16 for f32 weights that hold bf16 values).
  return (F - columns_read) * C * int64_t(dtype_size(ops::float_panels::panel_dtype(value_)));
}

}  // namespace aviary
