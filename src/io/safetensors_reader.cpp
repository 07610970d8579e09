#include "io/safetensors_reader.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "io/le_bytes.h"
#include "util/error.h"

namespace aviary {
namespace {

// Not ordered_json: its linear-time key lookup makes a header with very many
// keys quadratic. File order is recovered from the data offsets instead.
using Json = nlohmann::json;

std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

uint64_t as_count(const Json& j, const std::string& where, const char* what) {
  if (!j.is_number_unsigned() || j.get<uint64_t>() > uint64_t(INT64_MAX))
    throw Error(where + ": " + what + " must be a non-negative integer, found " + j.dump());
  return j.get<uint64_t>();
}

struct Parsed {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Parsed parse_tensor(const std::string& name, const Json& info, const MappedFile& file,
                    uint64_t data_start) {
  const std::string where = file.path() + ": tensor '" + name + "'";
  if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
      !info.contains("data_offsets") || !info["dtype"].is_string() || !info["shape"].is_array() ||
      !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
    throw Error(where + ": header entry needs \"dtype\", \"shape\" and two \"data_offsets\"");
  const std::string dtype_text = info["dtype"].get<std::string>();
  const auto dtype = parse_dtype(dtype_text);
  if (!dtype)
    throw Error(where + ": unsupported dtype " + dtype_text + " (supported: F32, F16, BF16)");

  Parsed p;
  p.view.name = name;
  p.view.dtype = *dtype;
  uint64_t numel = 1;
  for (const Json& d : info["shape"]) {
    p.view.shape.push_back(int64_t(as_count(d, where, "shape entry")));
    if (__builtin_mul_overflow(numel, uint64_t(p.view.shape.back()), &numel) ||
        numel > uint64_t(INT64_MAX))
      throw Error(where + ": shape " + shape_string(p.view.shape) + " has too many elements");
  }
  p.view.strides = contiguous_strides(p.view.shape);
  p.begin = as_count(info["data_offsets"][0], where, "data_offsets");
  const uint64_t end = p.end = as_count(info["data_offsets"][1], where, "data_offsets");
  const uint64_t available = file.size() - data_start;
  if (p.begin > end || end > available)
    throw Error(where + ": data_offsets [" + std::to_string(p.begin) + ", " + std::to_string(end) +
                "] lie outside the " + std::to_string(available) +
                "-byte data buffer; data out of bounds");
  const uint64_t expected =
      numel * dtype_size(*dtype);  // numel <= size, so no overflow in practice
  if (numel > available || end - p.begin != expected)
    throw Error(where + ": data_offsets span " + std::to_string(end - p.begin) +
                " bytes, expected " + std::to_string(numel) + " x " +
                std::to_string(dtype_size(*dtype)) + " for shape " + shape_string(p.view.shape) +
                " " + dtype_text);
  p.view.data = file.data() + data_start + p.begin;
  return p;
}

std::map<std::string, std::string> parse_metadata(const Json& meta, const std::string& path) {
  if (!meta.is_object()) throw error_in(path, "__metadata__ must be a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : meta.items()) {
    if (!v.is_string()) throw error_in(path, "__metadata__ value of '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

// The length is not checked against the file here, so that a truncated
// safetensors file is reported as one rather than as an unknown format.
bool looks_like_safetensors(const MappedFile& file) {
  return file.size() >= 9 && load_le64(file.data()) >= 2 && file.data()[8] == '{';
}

Checkpoint read_safetensors(std::shared_ptr<const MappedFile> file) {
  const std::string& path = file->path();
  if (file->size() < 8) throw error_in(path, "truncated safetensors file: no 8-byte header length");
  const uint64_t header_len = load_le64(file->data());
  if (header_len > file->size() - 8)
    throw error_in(path, "safetensors header length " + std::to_string(header_len) +
                             " exceeds the " + std::to_string(file->size() - 8) +
                             " bytes after it (file truncated?)");
  Json header;
  try {
    header = Json::parse(file->data() + 8, file->data() + 8 + header_len);
  } catch (const Json::parse_error& e) {
    throw error_in(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw error_in(path, "safetensors header is not a JSON object");

  std::vector<Parsed> parsed;
  std::map<std::string, std::string> metadata;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__")
      metadata = parse_metadata(info, path);
    else
      parsed.push_back(parse_tensor(name, info, *file, 8 + header_len));
  }
  // File order is data order; an empty tensor sorts before a non-empty one at
  // the same offset, and empty tensors at one offset by name (header order is lost).
  std::stable_sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::vector<TensorView> views;
  views.reserve(parsed.size());
  for (Parsed& p : parsed) views.push_back(std::move(p.view));
  return Checkpoint(std::move(file), CheckpointFormat::Safetensors, std::move(views), {},
                    std::move(metadata));
}

}  // namespace aviary
