// Writer for GGUF files (little-endian, version 3 unless the metadata says 2).
// The bytes depend only on the input: metadata in the order given, tensor
// infos in the order given, each tensor's data at the next multiple of the
// alignment, zero padding.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/gguf_value.h"

namespace aviary {

// ggml keeps names in a 64-byte field with a terminating NUL.
inline constexpr size_t kGgufMaxTensorName = 63;

// One tensor to write. `fill` must write exactly dtype_bytes(dtype, numel)
// bytes to `dst`; it is called once per tensor, in order, so a tensor can be
// produced (converted, quantized) just before it is written.
struct GgufTensorOut {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // torch order (row length last); written reversed as ne
  std::function<void(uint8_t* dst)> fill;
};

// A tensor whose bytes already exist (not owned: they must outlive the write).
GgufTensorOut gguf_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::span<const uint8_t> bytes);

// Bytes of a tensor of this type and shape (rows must be whole blocks).
uint64_t gguf_tensor_bytes(DType dtype, const std::vector<int64_t>& shape);

// Everything before the data section: header, metadata, tensor infos and the
// padding. Throws aviary::Error (prefixed with `path`) on invalid input: a
// name too long, more than 4 dimensions, rows that are not whole blocks,
// mixed array element types, an alignment that disagrees with the metadata.
std::string gguf_header_bytes(const std::string& path, const GgufMetadata& metadata,
                              const std::vector<GgufTensorOut>& tensors);

// Writes the file atomically (a temporary file renamed into place).
// Returns the file size.
uint64_t write_gguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorOut>& tensors);

}  // namespace aviary
