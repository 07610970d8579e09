// model_fingerprint(): a cheap identity of a model's weights, so a state
// saved with one model is not silently used with another of the same shape.
#include <algorithm>
#include <string_view>

#include "model/state_file.h"
#include "model/state_file_format.h"

namespace aviary {

namespace {

// Bytes sampled at each of the start, middle and end of every tensor: a
// fine-tune or another rounding of the same model changes nearly every
// value, so a sample finds it without reading gigabytes.
constexpr size_t kSampleBytes = 4096;

// 64-bit FNV-1a: simple, and fast enough for the ~12 bytes per KiB sampled.
class Fnv1a64 {
 public:
  void add(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < size; ++i) h_ = (h_ ^ p[i]) * 0x100000001b3ull;
  }
  void add_u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    add(b, 8);
  }
  void add_str(std::string_view s) {
    add_u64(s.size());
    add(s.data(), s.size());
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

// The stored bytes of elements [first, first + count) in C order, so a
// strided view hashes like its contiguous copy.
void add_elements(Fnv1a64& h, const TensorView& t, int64_t first, int64_t count) {
  const size_t es = dtype_size(t.dtype);
  if (t.is_contiguous()) {
    h.add(t.data + size_t(first) * es, size_t(count) * es);
    return;
  }
  for (int64_t i = first; i < first + count; ++i) {
    int64_t flat = i, offset = 0;
    for (size_t d = t.shape.size(); d-- > 0;) {
      offset += (flat % t.shape[d]) * t.strides[d];
      flat /= t.shape[d];
    }
    h.add(t.data + size_t(offset) * es, es);
  }
}

void add_tensor(Fnv1a64& h, const TensorView& t) {
  h.add_str(t.name);
  h.add_str(dtype_name(t.dtype));
  h.add_u64(t.shape.size());
  for (int64_t d : t.shape) h.add_u64(uint64_t(d));
  if (dtype_is_quantized(t.dtype)) {  // block-quantized tensors are contiguous: sample their bytes
    const size_t n = t.nbytes(), w = kSampleBytes;
    if (n <= 3 * w) {
      h.add(t.data, n);
    } else {
      h.add(t.data, w);
      h.add(t.data + n / 2 - w / 2, w);
      h.add(t.data + n - w, w);
    }
    return;
  }
  const int64_t n = t.numel(), window = int64_t(kSampleBytes / dtype_size(t.dtype));
  if (n <= 3 * window) {
    add_elements(h, t, 0, n);
    return;
  }
  add_elements(h, t, 0, window);
  add_elements(h, t, n / 2 - window / 2, window);
  add_elements(h, t, n - window, window);
}

}  // namespace

std::string model_fingerprint(const Model& model) {
  std::call_once(model.fingerprint_once_, [&] {
    // Name order, not file order: .pth and .safetensors copies agree.
    std::vector<const TensorView*> tensors;
    for (const auto& t : model.checkpoint().tensors()) tensors.push_back(&t);
    std::sort(tensors.begin(), tensors.end(), [](auto* a, auto* b) { return a->name < b->name; });
    Fnv1a64 h;
    for (const TensorView* t : tensors) add_tensor(h, *t);
    model.fingerprint_ = state_format::fingerprint_hex(h.value());
  });
  return model.fingerprint_;
}

}  // namespace aviary
