// Aviary state files: a model's recurrent state saved with everything needed
// to refuse it for the wrong model (architecture, dimensions, a fingerprint
// of the weights) and to detect damage (a CRC-32 over the whole file). The
// byte layout is specified in docs/state-format.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "model/state.h"

namespace aviary {

inline constexpr uint32_t kStateFormatVersion = 1;

// 16 hex digits identifying the weights: a 64-bit FNV-1a hash of every
// tensor's name, dtype and shape and of a bounded sample of its data (the
// first, middle and last 4 KiB), in name order, so the same weights in .pth
// or .safetensors give the same fingerprint. Fast even for a 15 GB model;
// computed once per Model and cached.
std::string model_fingerprint(const Model& model);

// What produced a state, saved alongside it (all optional).
struct StateExtras {
  int64_t token_count = -1;     // tokens the state has seen; -1 = unknown
  std::vector<int32_t> tokens;  // the tokens that produced it
  std::string text;             // the text that produced it
};

struct StateTensorInfo {
  std::string name;
  std::vector<int64_t> shape;
};

// Everything in a state file's header, read without a model.
struct StateFileInfo {
  std::string path;
  uint64_t file_size = 0;
  uint32_t format_version = 0;
  int arch_generation = 0;  // 4, 5, 6 or 7
  std::string version;      // the model's version name: "4", "x052", "x060", "x070"
  int64_t n_layer = 0, n_embd = 0, n_head = 0, head_size = 0, vocab_size = 0;
  std::vector<StateTensorInfo> tensors;
  uint64_t n_floats = 0;
  std::string fingerprint;  // of the weights the state was computed with
  std::string dtype;        // "f32"
  uint32_t crc32 = 0;
  StateExtras extras;
};

// Writes `state` atomically (temporary file, fsync, rename): a failure never
// leaves a damaged file at `path`. Throws aviary::Error if the state does not
// have this model's layout or the file cannot be written.
void save_state_file(const std::string& path, const Model& model, const State& state,
                     const StateExtras& extras = {});

struct StateLoadOptions {
  // Accept a state computed with other weights of the same shape (e.g. the
  // fp32 and bf16 files of one model, or a fine-tune of it).
  bool allow_other_weights = false;
};

// Reads a state file for `model`. Throws aviary::Error naming the file and
// what is wrong: damage (bad magic, unknown version, size or checksum
// mismatch), another architecture or other dimensions (expected vs found),
// or other weights unless options.allow_other_weights.
State load_state_file(const std::string& path, const Model& model, const StateLoadOptions& options = {},
                      StateExtras* extras = nullptr);

// The same format in memory, for caches that keep states in a database or
// send them over a network: the bytes save_state_file would write, and the
// check-and-load of load_state_file over bytes, whose errors name `source`
// (e.g. a cache key) where the file functions name the path.
std::string serialize_state_file(const Model& model, const State& state, const StateExtras& extras = {});
State parse_state_file(std::string_view bytes, const Model& model, const std::string& source,
                       const StateLoadOptions& options = {}, StateExtras* extras = nullptr);

// Checks the file's integrity and returns its header, tensors and extras.
StateFileInfo read_state_file_info(const std::string& path);

// True when the file starts with the state-file magic (no other check).
bool is_state_file(const std::string& path);

}  // namespace aviary
