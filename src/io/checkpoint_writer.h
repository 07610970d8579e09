// Writers for the two checkpoint formats, used by tests and by tools that
// convert or save weights. Tensors are written in the order given.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/tensor.h"
#include "io/zip_writer.h"

namespace aviary {

// One tensor to write: contiguous C-order bytes, numel x dtype_size long.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;  // not owned: must outlive the write call
};

// A TensorData that points at a contiguous view's bytes (no copy). Throws if
// the view is not contiguous; use contiguous_bytes() for those.
TensorData tensor_data(const TensorView& view);

// The view's elements in C order, honouring its strides.
std::vector<uint8_t> contiguous_bytes(const TensorView& view);

struct PthWriteOptions {
  // The folder the records live in. torch 1.13 uses the file's stem; any
  // name loads. The refdata files use "model".
  std::string archive_name = "archive";
  // Only tests change this, to get ZIP64 records without writing 4 GiB.
  uint64_t zip64_threshold = kZip64Threshold;
};

// What torch.save(dict) of torch 1.13 writes: a protocol-2 pickle of a plain
// dict name -> _rebuild_tensor_v2(...) in <root>/data.pkl, one storage record
// per tensor (<root>/data/0..n-1, in string order as torch writes them), and
// <root>/version = "3\n". Throws aviary::Error naming the file and tensor on
// bad input (byte count not matching shape and dtype, duplicate names).
void write_pth(const std::string& path, const std::vector<TensorData>& tensors,
               const PthWriteOptions& options = {});

// A safetensors file with dtypes F32/F16/BF16, the header padded with spaces
// to a multiple of 8 bytes, and `metadata` as "__metadata__" when not empty.
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Checks what both writers need (used by them; exposed for tools).
void check_tensor_data(const std::string& path, const std::vector<TensorData>& tensors);

}  // namespace aviary
