// Reader for GGUF files (llama.cpp / ggml), versions 2 and 3, little-endian.
// Everything is bounds-checked: a damaged or truncated file is an
// aviary::Error naming the file, the part being read and the byte offset.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/gguf_value.h"
#include "util/mapped_file.h"

namespace aviary {

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufMaxDims = 4;         // GGML_MAX_DIMS

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the row length (torch's last dim)
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;  // computed from ne and the type (0 for unsupported types)
};

struct GgufFile {
  GgufMetadata metadata;
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_offset = 0;  // absolute offset of the data section
};

bool has_gguf_magic(const MappedFile& file);

// Parses header, metadata and tensor infos of `bytes` and checks that every
// tensor of a supported type lies inside the data section. Tensors of other
// ggml types are listed (nbytes 0); read_gguf() refuses them.
GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& path);

// A Checkpoint over the GGUF tensors under their GGUF names, with shapes in
// torch order (ne reversed) and data in place; the metadata is attached.
Checkpoint read_gguf(std::shared_ptr<const MappedFile> file);

// The torch-order shape of a GGUF tensor (ne reversed) and back.
std::vector<int64_t> shape_from_ne(const std::vector<uint64_t>& ne);
std::vector<uint64_t> ne_from_shape(const std::vector<int64_t>& shape);

}  // namespace aviary
