// write_safetensors: header JSON in the order given, then the data.
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "io/checkpoint_writer.h"
#include "io/le_bytes.h"
#include "util/error.h"

namespace aviary {
namespace {

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q5_K: case DType::Q6_K:
      break;  // safetensors has no block-quantized types; callers refuse these earlier
  }
  return "?";
}

std::string header_json(const std::vector<TensorData>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorData& t : tensors) {
    h[t.name] = {{"dtype", safetensors_dtype(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = h.dump();
  // The reference writer pads with spaces so the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_tensor_data(path, tensors);
  for (const TensorData& t : tensors)
    if (t.name == "__metadata__") throw error_in(path, "a tensor cannot be named __metadata__");
  const std::string header = header_json(tensors, metadata);
  std::string prefix;
  append_le64(prefix, header.size());
  AtomicFile out(path);
  out.write(prefix + header);
  for (const TensorData& t : tensors) out.write(t.bytes.data(), t.bytes.size());
  out.commit();
}

}  // namespace aviary
