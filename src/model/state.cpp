#include "model/state.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/file_util.h"

namespace aviary {

State::State(std::vector<StateTensor> tensors) {
  size_t offset = 0;
  for (auto& t : tensors) {
    size_t n = 1;
    for (int64_t d : t.shape) n *= size_t(d);
    t.offset = offset;
    t.size = n;
    offset += n;
  }
  layout_ = std::make_shared<const std::vector<StateTensor>>(std::move(tensors));
  data_.resize(offset);
  reset();
}

void State::reset() {
  for (const auto& t : *layout_)
    std::fill_n(data_.begin() + std::ptrdiff_t(t.offset), t.size, t.initial);
}

void State::load_raw(std::span<const float> values, const std::string& source) {
  if (values.size() != data_.size())
    throw error_in(source, "state has " + std::to_string(values.size()) +
                               " float32 values, but this model's state has " +
                               std::to_string(data_.size()));
  std::copy(values.begin(), values.end(), data_.begin());
}

void State::load_raw_file(const std::string& path) { load_raw(read_f32_file(path), path); }

void State::save_raw_file(const std::string& path) const {
  write_file_atomic(path, data_.data(), data_.size() * sizeof(float));
}

bool State::same_layout(const State& other) const {
  if (layout_ == other.layout_) return true;
  if (layout_->size() != other.layout_->size()) return false;
  for (size_t i = 0; i < layout_->size(); ++i) {
    const auto& a = (*layout_)[i];
    const auto& b = (*other.layout_)[i];
    if (a.name != b.name || a.shape != b.shape) return false;
  }
  return true;
}

}  // namespace aviary
