// The sparse value product with Highway dynamic dispatch (see sparse_ffn.h
// for the summation order it promises).
//
// The nonzero activations are gathered first; then each thread takes a
// slice of the output columns and streams, for every nonzero row in order,
// that row's slice into its part of y (which stays in L1). Rows are added
// kRowsPerPass at a time so y is loaded and stored once per group: the same
// per-column order as one row at a time, with fewer trips through memory.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/sparse_ffn.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "ops/load-inl.h"
#include "ops/matrix.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {

constexpr size_t kRowsPerPass = 4;

// y[j0, j1) += val[r] * row idx[r] of W, for r = 0 .. kR-1 in order, while
// prefetching the same columns of the kR rows at `next` (a row's slice is a
// few cache lines, too short for the hardware prefetcher to catch on).
template <size_t kR, typename TW>
HWY_INLINE void AddRows(const TW* HWY_RESTRICT W, size_t C, const int64_t* idx, const float* val,
                        const int64_t* next, size_t j0, size_t j1, float* HWY_RESTRICT y) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const TW* rows[kR];
  const TW* ahead[kR];
  VF hv[kR];
  for (size_t r = 0; r < kR; ++r) {
    rows[r] = W + size_t(idx[r]) * C;
    ahead[r] = next ? W + size_t(next[r]) * C : rows[r];
    hv[r] = hn::Set(d, val[r]);
  }
  size_t j = j0;
  for (; j + L <= j1; j += L) {
    VF acc = hn::LoadU(d, y + j);
    for (size_t r = 0; r < kR; ++r) {
      __builtin_prefetch(ahead[r] + j);
      acc = hn::MulAdd(hv[r], LoadF32(d, rows[r] + j), acc);
    }
    hn::StoreU(acc, d, y + j);
  }
  if (j < j1) {
    const size_t n = j1 - j;
    VF acc = LoadPartialF32(d, y + j, n);
    for (size_t r = 0; r < kR; ++r) acc = hn::MulAdd(hv[r], LoadPartialF32(d, rows[r] + j, n), acc);
    StorePartial(d, acc, y + j, n);
  }
}

template <typename TW>
void SparseColsT(const TW* W, size_t C, const int64_t* idx, const float* val, size_t nnz, size_t j0, size_t j1,
                 float* y) {
  for (size_t j = j0; j < j1; ++j) y[j] = 0.f;
  size_t n = 0;
  for (; n + kRowsPerPass <= nnz; n += kRowsPerPass) {
    const int64_t* next = n + 2 * kRowsPerPass <= nnz ? idx + n + kRowsPerPass : nullptr;
    AddRows<kRowsPerPass>(W, C, idx + n, val + n, next, j0, j1, y);
  }
  for (; n < nnz; ++n) AddRows<1>(W, C, idx + n, val + n, nullptr, j0, j1, y);
}

// Output columns [j0, j1) of y = sum_n val[n] * Wt[idx[n], :].
void SparseCols(const Matrix& Wt, const int64_t* idx, const float* val, size_t nnz, size_t j0, size_t j1,
                float* y) {
  const size_t C = size_t(Wt.cols);
  switch (Wt.dtype) {
    case DType::F32:
      return SparseColsT(static_cast<const float*>(Wt.data), C, idx, val, nnz, j0, j1, y);
    case DType::F16:
      return SparseColsT(static_cast<const hwy::float16_t*>(Wt.data), C, idx, val, nnz, j0, j1, y);
    case DType::BF16:
      return SparseColsT(static_cast<const hwy::bfloat16_t*>(Wt.data), C, idx, val, nnz, j0, j1, y);
    default:
      return;  // block-quantized: refused by sparse_rows_sum before dispatch
  }
}

}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops/quant.h"
#include "ops/simd.h"
#include "ops/sparse_ffn.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::ops {

HWY_EXPORT(SparseCols);

namespace {
// The thresholds of linear_in_out (ops/linear.cpp): below this many
// multiply-adds the calling thread works alone; columns are handed out in
// blocks that are a multiple of every vector width.
constexpr int64_t kParallelMacs = int64_t(1) << 17;
constexpr int64_t kColGrain = 64;

void check_operands(int64_t F, const Matrix& Wt, const char* what) {
  check_not_quantized(Wt.dtype, what);
  if (Wt.rows != F)
    throw Error(std::string(what) + ": " + std::to_string(F) + " activations for a matrix of " +
                std::to_string(Wt.rows) + " rows");
}
}  // namespace

int64_t count_nonzero(const float* h, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += h[i] != 0.f;
  return count;
}

void sparse_rows_sum(const float* h, int64_t F, const Matrix& Wt, float* y) {
  check_operands(F, Wt, "sparse_rows_sum");
  if (detail::use_reference()) return reference::sparse_rows_sum(h, F, Wt, y);
  const int64_t C = Wt.cols;
  if (C <= 0) return;
  // Per calling thread: several sequences may decode at once on different threads.
  thread_local std::vector<int64_t> idx;
  thread_local std::vector<float> val;
  if (idx.size() < size_t(F)) {
    idx.resize(size_t(F));
    val.resize(size_t(F));
  }
  // Branch-free gather: with zeros scattered at random a branch would
  // mispredict on about every other activation.
  size_t nnz = 0;
  for (int64_t i = 0; i < F; ++i) {
    idx[nnz] = i;
    val[nnz] = h[i];
    nnz += h[i] != 0.f;
  }
  const auto kernel = &HWY_DYNAMIC_DISPATCH(SparseCols);
  if (int64_t(nnz) * C < kParallelMacs) return kernel(Wt, idx.data(), val.data(), nnz, 0, size_t(C), y);
  const int64_t* ip = idx.data();
  const float* vp = val.data();
  default_pool().parallel_for((C + kColGrain - 1) / kColGrain, [&](int64_t begin, int64_t end) {
    kernel(Wt, ip, vp, nnz, size_t(begin * kColGrain), size_t(std::min(end * kColGrain, C)), y);
  });
}

namespace {
// Square tiles keep both the rows read and the rows written in cache.
constexpr int64_t kTransposeTile = 32;

// dst [cols, rows] = src [rows, cols]^T for elements of `es` bytes, over the
// tile columns [tc0, tc1) of the source. memcpy per element: rows of a
// mapped file need not be aligned.
template <size_t es>
void transpose_tiles(const uint8_t* src, int64_t rows, int64_t cols, int64_t tc0, int64_t tc1, uint8_t* dst) {
  for (int64_t c0 = tc0 * kTransposeTile; c0 < std::min(tc1 * kTransposeTile, cols); c0 += kTransposeTile)
    for (int64_t r0 = 0; r0 < rows; r0 += kTransposeTile) {
      const int64_t c1 = std::min(c0 + kTransposeTile, cols), r1 = std::min(r0 + kTransposeTile, rows);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r)
          std::memcpy(dst + size_t(c * rows + r) * es, src + size_t(r * cols + c) * es, es);
    }
}
}  // namespace

OwnedMatrix transpose_copy(const Matrix& W) {
  check_not_quantized(W.dtype, "transpose_copy");
  const size_t es = dtype_size(W.dtype), n = size_t(W.rows * W.cols);
  OwnedMatrix out;
  out.bytes = std::make_unique_for_overwrite<uint8_t[]>(std::max<size_t>(n * es, 1));
  out.matrix = Matrix{out.bytes.get(), W.dtype, W.cols, W.rows};
  const auto* src = static_cast<const uint8_t*>(W.data);
  uint8_t* dst = out.bytes.get();
  const int64_t tiles = (W.cols + kTransposeTile - 1) / kTransposeTile;
  default_pool().parallel_for(tiles, [&](int64_t begin, int64_t end) {
    if (es == 2) transpose_tiles<2>(src, W.rows, W.cols, begin, end, dst);
    else transpose_tiles<4>(src, W.rows, W.cols, begin, end, dst);
  });
  return out;
}

namespace reference {

void sparse_rows_sum(const float* h, int64_t F, const Matrix& Wt, float* y) {
  check_operands(F, Wt, "sparse_rows_sum");
  const int64_t C = Wt.cols;
  std::vector<float> row(static_cast<size_t>(C));
  std::fill_n(y, C, 0.f);
  for (int64_t i = 0; i < F; ++i) {
    if (h[i] == 0.f) continue;
    convert_to_f32(Wt.row_ptr(i), Wt.dtype, C, row.data());
    for (int64_t c = 0; c < C; ++c) y[c] += h[i] * row[size_t(c)];
  }
}

}  // namespace reference
}  // namespace aviary::ops

#endif  // HWY_ONCE
