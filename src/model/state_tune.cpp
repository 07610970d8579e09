#include "model/state_tune.h"

#include <cctype>
#include <optional>

#include "util/error.h"

namespace aviary {

namespace {

constexpr std::string_view kPrefix = "blocks.", kSuffix = ".att.time_state";

std::string tune_name(int64_t layer) { return std::string(kPrefix) + std::to_string(layer) + std::string(kSuffix); }

// The layer of a `blocks.N.att.time_state` name, or -1 for other names.
int64_t tune_layer(std::string_view name) {
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) || !name.ends_with(kSuffix))
    return -1;
  const std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (digits.size() > 9) return -1;
  int64_t n = 0;
  for (char ch : digits) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) return -1;
    n = n * 10 + (ch - '0');
  }
  return n;
}

// A file for a deeper model, or no time_state at all, is the wrong file.
void check_layers(const Checkpoint& ckpt, const Model& model) {
  const int64_t L = model.config().n_layer;
  bool any = false;
  for (const auto& t : ckpt.tensors()) {
    const int64_t layer = tune_layer(t.name);
    if (layer >= L)
      throw error_in(ckpt.path(), "has '" + t.name + "', but " + model.checkpoint().path() + " has only " +
                                      std::to_string(L) + " layers: the state was tuned for another model");
    any = any || layer >= 0;
  }
  if (!any)
    throw error_in(ckpt.path(), "no 'blocks.N.att.time_state' tensors: not a state-tune file");
}

size_t wkv_index(const State& state, int64_t layer) {
  const std::string name = "blocks." + std::to_string(layer) + ".att.wkv_state";
  for (size_t i = 0; i < state.num_tensors(); ++i)
    if (state.layout()[i].name == name) return i;
  throw Error("internal: the state has no tensor " + name);
}

}  // namespace

State load_state_tune(const Checkpoint& ckpt, const Model& model) {
  const ModelConfig& c = model.config();
  if (c.arch == Arch::RWKV4)
    throw error_in(ckpt.path(), "RWKV-4 models have no matrix-valued state, so no state-tuned initial state "
                                "applies to " + model.checkpoint().path() +
                                " (time_state exists for RWKV-5.2, RWKV-6 and RWKV-7)");
  check_layers(ckpt, model);
  const int64_t H = c.n_head, N = c.head_size;
  const std::vector<int64_t> want = {H, N, N};
  const bool transpose = c.arch != Arch::RWKV7;  // see state_tune.h
  State state = model.new_state();
  for (int64_t layer = 0; layer < c.n_layer; ++layer) {
    const std::string name = tune_name(layer);
    const TensorView* t = ckpt.find(name);
    if (!t)
      throw error_in(ckpt.path(), "missing tensor '" + name + "' (a state-tune file for " +
                                      model.checkpoint().path() + " has one for each of its " +
                                      std::to_string(c.n_layer) + " layers)");
    if (t->shape != want)
      throw error_in(ckpt.path(), "'" + name + "' has shape " + shape_string(t->shape) + ", expected " +
                                      shape_string(want) + " for " + model.checkpoint().path());
    float* dst = state.tensor(wkv_index(state, layer)).data();
    for (int64_t h = 0; h < H; ++h)
      for (int64_t a = 0; a < N; ++a)
        for (int64_t b = 0; b < N; ++b) {
          const int64_t from = (h * N + a) * N + b;
          dst[transpose ? (h * N + b) * N + a : from] = t->at(from);
        }
  }
  return state;
}

State load_state_tune(const std::string& path, const Model& model) {
  return load_state_tune(Checkpoint::open(path), model);
}

State load_initial_state(const std::string& path, const Model& model, const StateLoadOptions& options) {
  if (is_state_file(path)) return load_state_file(path, model, options);
  std::optional<Checkpoint> ckpt;
  try {
    ckpt.emplace(Checkpoint::open(path));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) +
                " (an initial state is an Aviary state file or a state-tune .pth/.safetensors; a raw float32 "
                "state in the official layout goes to --state-in-f32)");
  }
  return load_state_tune(*ckpt, model);
}

}  // namespace aviary
