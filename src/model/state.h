// The recurrent state of a model: a list of fp32 tensors in the same order as
// the official `rwkv` pip package keeps them (see refdata/README.md, "State
// layout"), stored back to back in one buffer. Flattening the buffer gives the
// official raw layout, so states exchange with the official implementation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace aviary {

struct StateTensor {
  std::string name;              // e.g. "blocks.0.att.wkv_state"
  std::vector<int64_t> shape;
  size_t offset = 0;             // in floats, from the start of the buffer
  size_t size = 0;               // in floats
  float initial = 0.f;           // value of the zero state (v4's pp is -1e30)
};

class State {
 public:
  // Offsets and sizes of `tensors` are filled in from their shapes.
  explicit State(std::vector<StateTensor> tensors);

  // Back to the initial ("zero") state.
  void reset();

  const std::vector<StateTensor>& layout() const { return *layout_; }
  size_t num_tensors() const { return layout_->size(); }
  std::span<float> tensor(size_t index) { return {data_.data() + (*layout_)[index].offset, (*layout_)[index].size}; }
  std::span<const float> tensor(size_t index) const {
    return {data_.data() + (*layout_)[index].offset, (*layout_)[index].size};
  }

  // The whole state in the official flat layout.
  std::span<const float> raw() const { return data_; }
  std::span<float> raw() { return data_; }

  // Replaces the state with `values` in the official flat layout. Throws
  // aviary::Error naming `source` if the size does not match.
  void load_raw(std::span<const float> values, const std::string& source);
  // Reads a raw little-endian float32 file in the official layout.
  void load_raw_file(const std::string& path);
  void save_raw_file(const std::string& path) const;

  // Same layout (names and shapes), so one can stand in for the other.
  bool same_layout(const State& other) const;

 private:
  std::shared_ptr<const std::vector<StateTensor>> layout_;  // shared by copies
  std::vector<float> data_;
};

}  // namespace aviary
