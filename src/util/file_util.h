// Small whole-file helpers used by the tools and tests.
#pragma once

#include <string>
#include <vector>

namespace aviary {

// Reads a whole file; throws aviary::Error naming the path on failure.
std::string read_file(const std::string& path);

// Reads a file of raw little-endian float32 values.
std::vector<float> read_f32_file(const std::string& path);

// Writes data atomically: to a temporary file beside `path`, fsync, rename.
// A crash part-way never leaves a damaged file in place of a good one.
void write_file_atomic(const std::string& path, const void* data, size_t size);

inline void write_f32_file(const std::string& path, const std::vector<float>& v) {
  write_file_atomic(path, v.data(), v.size() * sizeof(float));
}

}  // namespace aviary
