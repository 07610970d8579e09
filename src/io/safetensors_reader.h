// Reader for `.safetensors`: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
// the tensor bytes.
#pragma once

#include <memory>

#include "io/checkpoint.h"

namespace aviary {

// Cheap content sniff used by Checkpoint::open: a header length of at least
// 2 followed by '{'.
bool looks_like_safetensors(const MappedFile& file);

// Tensors point straight into `file`, in data order. Only F32, F16 and BF16
// are accepted; every data_offsets pair is checked against the data buffer
// and against the tensor's shape.
Checkpoint read_safetensors(std::shared_ptr<const MappedFile> file);

}  // namespace aviary
