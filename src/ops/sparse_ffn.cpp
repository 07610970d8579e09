// The sparse value product (ops/sparse_ffn.h): checks, the reference loops,
// and the hand-off to the float panel kernel (ops/float_panels.cpp).
#include "ops/sparse_ffn.h"

#include <string>
#include <vector>

#include "ops/float_panels.h"
#include "ops/quant.h"
#include "ops/simd.h"
#include "util/error.h"

namespace aviary::ops {

namespace {
void check_operands(int64_t F, const Matrix& W, const char* what) {
  check_not_quantized(W.dtype, what);
  if (W.cols != F)
    throw Error(std::string(what) + ": " + std::to_string(F) + " activations for a matrix of " +
                std::to_string(W.cols) + " columns");
}
}  // namespace

int64_t count_nonzero(const float* h, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += h[i] != 0.f;
  return count;
}

void sparse_linear(const float* h, int64_t F, const Matrix& W, float* y) {
  check_operands(F, W, "sparse_linear");
  if (detail::use_reference() || !W.packed || !float_panels::runs()) return reference::sparse_linear(h, F, W, y);
  if (W.rows > 0) float_panels::sparse_linear(h, W, y);
}

namespace reference {

void sparse_linear(const float* h, int64_t F, const Matrix& W, float* y) {
  check_operands(F, W, "sparse_linear");
  std::vector<float> row(static_cast<size_t>(F));
  for (int64_t o = 0; o < W.rows; ++o) {
    convert_to_f32(W.row_ptr(o), W.dtype, F, row.data());
    float acc = 0.f;
    for (int64_t i = 0; i < F; ++i)
      if (h[i] != 0.f) acc += row[size_t(i)] * h[i];
    y[o] = acc;
  }
}

}  // namespace reference
}  // namespace aviary::ops
