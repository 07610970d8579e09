#include "io/gguf_writer.h"

#include <cstring>
#include <unordered_set>

#include "io/le_bytes.h"
#include "io/tensor.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace aviary {

namespace {

void append_string(std::string& out, std::string_view s) {
  append_le64(out, s.size());
  out.append(s);
}

void append_value(std::string& out, const GgufValue& v, const std::string& path, const std::string& key) {
  switch (v.type()) {
    case GgufType::U8: case GgufType::I8: out += char(uint8_t(v.as_int())); return;
    case GgufType::U16: case GgufType::I16: append_le16(out, uint16_t(v.as_int())); return;
    case GgufType::U32: case GgufType::I32: append_le32(out, uint32_t(v.as_int())); return;
    case GgufType::U64: case GgufType::I64: append_le64(out, uint64_t(v.as_int())); return;
    case GgufType::F32: {
      const float f = float(v.as_float());
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      append_le32(out, bits);
      return;
    }
    case GgufType::F64: {
      const double d = v.as_float();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      append_le64(out, bits);
      return;
    }
    case GgufType::Bool: out += char(v.as_bool() ? 1 : 0); return;
    case GgufType::String: append_string(out, v.as_string()); return;
    case GgufType::Array: {
      append_le32(out, uint32_t(v.element_type()));
      append_le64(out, v.as_array().size());
      for (const GgufValue& item : v.as_array()) {
        if (item.type() != v.element_type())
          throw error_in(path, "metadata " + key + ": an array of " + std::string(gguf_type_name(v.element_type())) +
                                   " holds a " + std::string(gguf_type_name(item.type())));
        append_value(out, item, path, key);
      }
      return;
    }
  }
}

void check_alignment(const std::string& path, const GgufMetadata& m) {
  if (m.version != 2 && m.version != 3) throw error_in(path, "GGUF version must be 2 or 3");
  const GgufValue* a = m.find("general.alignment");
  const uint64_t declared = a ? a->as_u64() : 32;
  if ((a && a->type() != GgufType::U32) || declared != m.alignment)
    throw error_in(path, "general.alignment must be a u32 equal to the alignment used (" +
                             std::to_string(m.alignment) + ")");
  if (m.alignment == 0 || m.alignment % 8 != 0 || (m.alignment & (m.alignment - 1)) != 0)
    throw error_in(path, "alignment " + std::to_string(m.alignment) + " is not a power of two multiple of 8");
}

void check_tensor(const std::string& path, const GgufTensorOut& t) {
  const std::string where = "tensor '" + t.name + "'";
  if (t.name.empty() || t.name.size() > kGgufMaxTensorName)
    throw error_in(path, where + ": names must be 1 to " + std::to_string(kGgufMaxTensorName) + " bytes");
  if (t.shape.size() > 4) throw error_in(path, where + " has more than 4 dimensions");
  for (int64_t d : t.shape)
    if (d < 0) throw error_in(path, where + " has a negative dimension");
  const int64_t block = dtype_block_elems(t.dtype);
  if (!t.shape.empty() && t.shape.back() % block != 0)
    throw error_in(path, where + " of type " + std::string(dtype_name(t.dtype)) + " has rows of " +
                             std::to_string(t.shape.back()) + " values, not a multiple of " + std::to_string(block));
  if (!t.fill) throw error_in(path, where + " has no data");
}

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

uint64_t gguf_tensor_bytes(DType dtype, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return dtype_bytes(dtype, n);
}

GgufTensorOut gguf_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::span<const uint8_t> bytes) {
  const uint64_t expected = gguf_tensor_bytes(dtype, shape);
  if (bytes.size() != expected)
    throw Error("tensor '" + name + "': " + std::to_string(bytes.size()) + " bytes given, " +
                std::to_string(expected) + " expected for " + shape_string(shape) + " " + std::string(dtype_name(dtype)));
  return {std::move(name), dtype, std::move(shape), [bytes](uint8_t* dst) { std::memcpy(dst, bytes.data(), bytes.size()); }};
}

std::string gguf_header_bytes(const std::string& path, const GgufMetadata& metadata,
                              const std::vector<GgufTensorOut>& tensors) {
  check_alignment(path, metadata);
  std::string out;
  append_le32(out, 0x46554747u);  // "GGUF"
  append_le32(out, metadata.version);
  append_le64(out, tensors.size());
  append_le64(out, metadata.entries.size());
  std::unordered_set<std::string> keys;
  for (const auto& [key, value] : metadata.entries) {
    if (key.empty() || key.size() > 65535 || !keys.insert(key).second)
      throw error_in(path, "metadata key '" + key + "' is empty, too long or repeated");
    append_string(out, key);
    append_le32(out, uint32_t(value.type()));
    append_value(out, value, path, key);
  }
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const GgufTensorOut& t : tensors) {
    check_tensor(path, t);
    if (!names.insert(t.name).second) throw error_in(path, "duplicate tensor '" + t.name + "'");
    append_string(out, t.name);
    append_le32(out, uint32_t(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) append_le64(out, uint64_t(*d));
    append_le32(out, ggml_type_of(t.dtype));
    append_le64(out, offset);
    offset = align_up(offset + gguf_tensor_bytes(t.dtype, t.shape), metadata.alignment);
  }
  out.resize(align_up(out.size(), metadata.alignment), '\0');
  return out;
}

uint64_t write_gguf(const std::string& path, const GgufMetadata& metadata, const std::vector<GgufTensorOut>& tensors) {
  const std::string header = gguf_header_bytes(path, metadata, tensors);
  AtomicFile out(path);
  out.write(header);
  std::vector<uint8_t> buf;
  for (const GgufTensorOut& t : tensors) {
    const uint64_t n = gguf_tensor_bytes(t.dtype, t.shape);
    buf.assign(size_t(n), 0);
    t.fill(buf.data());
    out.write(buf.data(), buf.size());
    // Every tensor, the last included, is padded to the alignment, as ggml
    // and gguf-py write files.
    out.write(std::string(size_t(align_up(n, metadata.alignment) - n), '\0'));
  }
  const uint64_t size = out.position();
  out.commit();
  return size;
}

}  // namespace aviary
