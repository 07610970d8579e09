#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/checkpoint.h"
#include "model/gguf_rwkv7.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary {

int64_t official_lora_rank(LoraKind kind, int64_t n_embd) {
  const double C = double(n_embd);
  double size = 0;
  switch (kind) {
    case LoraKind::Decay: case LoraKind::InContextRate: size = 1.8 * std::sqrt(C); break;
    case LoraKind::ValueResidual: size = 1.3 * std::sqrt(C); break;
    case LoraKind::Gate: size = 0.6 * std::pow(C, 0.8); break;
  }
  // Python's round() is half-to-even; no official width lands on a half.
  return std::max<int64_t>(32, int64_t(std::nearbyint(size / 32)) * 32);
}

const std::vector<SynthShape>& synth_shapes() {
  // Layers and widths of the released G1/World RWKV-7 models; ranks as in
  // their checkpoints (the training-code formula, except 0.4B's gate).
  static const std::vector<SynthShape> shapes = {
      {"0.1B", 12, 768, 64, 64, 32, 128},
      {"0.4B", 24, 1024, 64, 64, 32, 128},
      {"1.5B", 24, 2048, 96, 96, 64, 256},
      {"2.9B", 32, 2560, 96, 96, 64, 320},
      {"7.2B", 32, 4096, 128, 128, 96, 480},
  };
  return shapes;
}

const SynthShape& synth_shape(std::string_view name) {
  std::string known;
  for (const SynthShape& s : synth_shapes()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error("unknown model shape '" + std::string(name) + "' (known: " + known + ")");
}

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void store(DType dtype, float v, uint8_t* out) {
  switch (dtype) {
    case DType::F32: std::memcpy(out, &v, 4); return;
    case DType::F16: { const uint16_t h = f32_to_f16(v); std::memcpy(out, &h, 2); return; }
    case DType::BF16: { const uint16_t h = f32_to_bf16(v); std::memcpy(out, &h, 2); return; }
    default: return;  // refused by make_synth_rwkv7
  }
}

class Builder {
 public:
  Builder(const SynthOptions& o) : options_(o) {}

  // Uniform values with standard deviation `stddev` (uniform rather than
  // normal: cheap, and only the scale matters). Blocks of 64K values have
  // their own random stream, so the result does not depend on threads.
  void random(const std::string& name, std::vector<int64_t> shape, double stddev) {
    uint8_t* out = add(name, shape);
    const int64_t n = numel(shape), block = int64_t(1) << 16, blocks = (n + block - 1) / block;
    const double half_width = std::sqrt(3.0) * stddev;
    const uint64_t tensor_seed = options_.seed * 0x100000001b3ull + uint64_t(tensors_.size());
    const size_t es = dtype_size(options_.dtype);
    default_pool().parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        uint64_t state = tensor_seed ^ (uint64_t(b) * 0xd6e8feb86659fd93ull);
        for (int64_t i = b * block; i < std::min(n, (b + 1) * block); ++i) {
          const double u = double(splitmix64(state) >> 11) * 0x1p-53;  // [0, 1)
          store(options_.dtype, float((2 * u - 1) * half_width), out + size_t(i) * es);
        }
      }
    });
  }

  // A per-channel tensor from a formula of the channel index.
  template <typename F>
  void ramp(const std::string& name, std::vector<int64_t> shape, F value) {
    uint8_t* out = add(name, shape);
    const int64_t n = numel(shape);
    for (int64_t i = 0; i < n; ++i) store(options_.dtype, float(value(i)), out + size_t(i) * dtype_size(options_.dtype));
  }

  void constant(const std::string& name, std::vector<int64_t> shape, double v) {
    ramp(name, std::move(shape), [v](int64_t) { return v; });
  }

  SynthTensors take() {
    SynthTensors t;
    t.buffers = std::move(buffers_);
    t.tensors = std::move(tensors_);
    return t;
  }

 private:
  static int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }

  uint8_t* add(const std::string& name, const std::vector<int64_t>& shape) {
    buffers_.emplace_back(size_t(numel(shape)) * dtype_size(options_.dtype));
    // Vectors keep their heap blocks when the outer vector grows, so the
    // spans taken here stay valid.
    tensors_.push_back({name, options_.dtype, shape, std::span<const uint8_t>(buffers_.back())});
    return buffers_.back().data();
  }

  SynthOptions options_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<TensorData> tensors_;
};

// One block in the training code's key order, with values near the
// official initialisation (RWKV-LM RWKV-v7 train_temp) and nonzero random
// matrices wherever that init is zero.
void add_block(Builder& b, const SynthShape& s, int64_t n_layer, int64_t layer) {
  const int64_t C = s.n_embd, N = SynthShape::kHeadSize, H = C / N, F = s.ffn_dim();
  const std::vector<int64_t> vec{1, 1, C};
  const std::string p = "blocks." + std::to_string(layer) + ".";
  const std::string a = p + "att.";
  const double r01 = n_layer > 1 ? double(layer) / double(n_layer - 1) : 0.0;  // 0 to 1
  const double r10 = 1.0 - double(layer) / double(n_layer);                    // 1 to almost 0
  const double inv_sqrt_c = 1.0 / std::sqrt(double(C));
  auto frac = [C](int64_t i) { return double(i) / double(C); };
  auto linear = [C](int64_t i) { return double(i) / double(C - 1) - 0.5; };
  auto zigzag = [N](int64_t i) {
    const double z = (double(i % N) - (N - 1) / 2.0) / ((N - 1) / 2.0);
    return z * std::abs(z);
  };

  for (const char* ln : {"ln1", "ln2"}) {
    b.constant(p + ln + ".weight", {C}, 1.0);
    b.constant(p + ln + ".bias", {C}, 0.0);
  }
  if (layer == 0) {
    b.constant(p + "ln0.weight", {C}, 1.0);
    b.constant(p + "ln0.bias", {C}, 0.0);
  }
  const std::pair<const char*, double> mixes[] = {{"x_r", 0.2}, {"x_w", 0.9}, {"x_k", 0.7},
                                                  {"x_v", 0.7}, {"x_a", 0.9}, {"x_g", 0.2}};
  for (auto [name, power] : mixes)
    b.ramp(a + name, vec, [&, power](int64_t i) { return 1.0 - std::pow(frac(i), power * r10); });
  auto lora = [&](const char* n, int64_t rank) {
    b.random(a + n + "1", {C, rank}, inv_sqrt_c);
    b.random(a + n + "2", {rank, C}, 0.1 / std::sqrt(double(rank)));
  };
  lora("w", s.lora_w);
  b.ramp(a + "w0", vec, [&](int64_t i) {
    return -6 + 6 * std::pow(double(i) / double(C - 1), 1 + std::pow(r01, 0.3)) + 0.5 + zigzag(i) * 2.5;
  });
  lora("a", s.lora_a);
  b.ramp(a + "a0", vec, [&](int64_t i) { return -0.19 + zigzag(i) * 0.3 + linear(i) * 0.4; });
  lora("v", s.lora_v);  // layer 0 too: official files carry them, unused
  b.ramp(a + "v0", vec, [&](int64_t i) { return 0.73 - linear(i) * 0.4; });
  lora("g", s.lora_g);
  b.ramp(a + "k_k", vec, [&](int64_t i) { return 0.71 - linear(i) * 0.1; });
  b.constant(a + "k_a", vec, 1.02);
  b.constant(a + "r_k", {H, N}, -0.04);
  b.random(a + "receptance.weight", {C, C}, inv_sqrt_c);
  b.random(a + "key.weight", {C, C}, inv_sqrt_c);
  b.random(a + "value.weight", {C, C}, inv_sqrt_c);
  b.random(a + "output.weight", {C, C}, 0.5 * inv_sqrt_c);
  b.constant(a + "ln_x.weight", {C}, 1.0);
  b.constant(a + "ln_x.bias", {C}, 0.0);
  b.ramp(p + "ffn.x_k", vec, [&](int64_t i) { return 1.0 - std::pow(frac(i), std::pow(r10, 4)); });
  b.random(p + "ffn.key.weight", {F, C}, inv_sqrt_c);
  b.random(p + "ffn.value.weight", {C, F}, 0.5 / std::sqrt(double(F)));
}

}  // namespace

SynthTensors make_synth_rwkv7(const SynthShape& shape, const SynthOptions& options) {
  if (options.dtype != DType::F32 && options.dtype != DType::F16 && options.dtype != DType::BF16)
    throw Error("synth: dtype " + std::string(dtype_name(options.dtype)) + " is not supported (use bf16, f16 or f32)");
  if (options.layers < 0) throw Error("synth: the layer count must be positive");
  const int64_t L = options.layers > 0 ? options.layers : shape.n_layer, C = shape.n_embd, V = SynthShape::kVocab;
  Builder b(options);
  b.random("emb.weight", {V, C}, 1.0);  // ln0 normalises each row anyway
  for (int64_t i = 0; i < L; ++i) add_block(b, shape, L, i);
  b.constant("ln_out.weight", {C}, 1.0);
  b.constant("ln_out.bias", {C}, 0.0);
  // Logits with a standard deviation of about 3, as trained models have.
  b.random("head.weight", {V, C}, 3.0 / std::sqrt(double(C)));
  return b.take();
}

namespace {

void write_pth_file(const std::string& path, const SynthShape& shape, const SynthOptions& options) {
  const SynthTensors t = make_synth_rwkv7(shape, options);
  PthWriteOptions w;
  const std::string stem = std::filesystem::path(path).stem().string();
  w.archive_name = stem.empty() ? "archive" : stem;
  write_pth(path, t.tensors, w);
}

// Removes the temporary file however the conversion ends.
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

}  // namespace

void write_synth_rwkv7(const std::string& path, const SynthShape& shape, const SynthOptions& options) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".pth" || ext == ".pt") return write_pth_file(path, shape, options);
  if (ext != ".gguf") throw error_in(path, "the output must be a .pth or .gguf file");
  SynthOptions pth = options;
  if (dtype_is_quantized(pth.dtype)) pth.dtype = DType::BF16;  // quantized on the way to GGUF
  const RemoveOnExit tmp{path + ".synth-tmp.pth"};
  write_pth_file(tmp.path, shape, pth);
  const Checkpoint ckpt = Checkpoint::open(tmp.path);
  write_rwkv7_gguf(ckpt, path, options.dtype, options.vocab, "RWKV-7 synthetic " + shape.name);
}

}  // namespace aviary
