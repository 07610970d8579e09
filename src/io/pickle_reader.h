// A reader for the pickle that torch.save writes as data.pkl. It is not a
// Python unpickler: it never executes anything. It interprets the opcodes a
// state dict uses and a whitelist of globals (OrderedDict, the tensor rebuild
// functions, three storage classes); everything else is an error.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/dtype.h"

namespace aviary {

// The persistent id ('storage', StorageType, key, location, numel).
struct PickledStorage {
  DType dtype = DType::F32;
  std::string type_name;  // e.g. "torch.BFloat16Storage"
  std::string key;        // the storage's record is <root>/data/<key>
  std::string location;   // e.g. "cpu"
  int64_t numel = 0;      // in elements of dtype
};

// One top-level dict entry: torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...).
struct PickledTensor {
  std::string name;
  PickledStorage storage;
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
};

// Interprets a pickle whose top-level object is a dict (or OrderedDict) of
// name -> tensor, and returns the tensors in dict order. `context` starts
// every error message (e.g. "model.pth: archive/data.pkl"), which also names
// the opcode or global and its byte offset.
std::vector<PickledTensor> read_torch_pickle(std::span<const uint8_t> pickle,
                                             const std::string& context);

}  // namespace aviary
