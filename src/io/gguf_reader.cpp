// GGUF layout (ggml docs/gguf.md, v3): "GGUF", u32 version, u64 tensor_count,
// u64 kv_count, the key/value pairs, the tensor infos, zero padding to the
// alignment, then the tensor data. Strings are u64 length + bytes; arrays
// are u32 element type + u64 count + elements. Version 1 used 32-bit counts
// and is refused; version 3 only added big-endian files, which are refused
// too (there is no flag for them: they show up as a byte-swapped version).
#include "io/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "io/le_bytes.h"
#include "util/error.h"

namespace aviary {

namespace {

// A bounds-checked forward reader over the file's bytes.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw error_in(path_, "GGUF: " + what + " (at byte " + std::to_string(pos_) + " of " +
                              std::to_string(bytes_.size()) + ")");
  }

  const uint8_t* take(uint64_t n, const std::string& what) {
    if (n > remaining()) fail("truncated file: " + what + " needs " + std::to_string(n) + " bytes, " +
                              std::to_string(remaining()) + " left");
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8(const std::string& what) { return *take(1, what); }
  uint16_t u16(const std::string& what) { return load_le16(take(2, what)); }
  uint32_t u32(const std::string& what) { return load_le32(take(4, what)); }
  uint64_t u64(const std::string& what) { return load_le64(take(8, what)); }

  std::string string(const std::string& what, uint64_t max_len = UINT64_MAX) {
    const uint64_t len = u64(what + " length");
    if (len > max_len) fail(what + " is " + std::to_string(len) + " bytes long, more than " + std::to_string(max_len));
    const uint8_t* p = take(len, what);
    return std::string(reinterpret_cast<const char*>(p), size_t(len));
  }

  // A count of items that each take at least `min_item_bytes`: a larger count
  // than the rest of the file can hold is damage, refused before allocating.
  void check_count(uint64_t count, uint64_t min_item_bytes, const std::string& what) const {
    if (count > remaining() / min_item_bytes)
      fail("truncated or damaged file: " + what + " count " + std::to_string(count) + " cannot fit in the " + std::to_string(remaining()) +
           " bytes left");
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

constexpr int kMaxArrayNesting = 8;  // deeper nesting is damage, not a real file

// Smallest encoded size of one value of type t (for count checks).
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::String: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

GgufType read_type(Cursor& c, const std::string& what) {
  const uint32_t t = c.u32(what + " type");
  if (t >= kGgufTypeCount) c.fail(what + " has unknown value type " + std::to_string(t));
  return GgufType(t);
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& what, int depth) {
  switch (t) {
    case GgufType::U8: return GgufValue::u8(c.u8(what));
    case GgufType::I8: return GgufValue::i8(int8_t(c.u8(what)));
    case GgufType::U16: return GgufValue::u16(c.u16(what));
    case GgufType::I16: return GgufValue::i16(int16_t(c.u16(what)));
    case GgufType::U32: return GgufValue::u32(c.u32(what));
    case GgufType::I32: return GgufValue::i32(int32_t(c.u32(what)));
    case GgufType::U64: return GgufValue::u64(c.u64(what));
    case GgufType::I64: return GgufValue::i64(int64_t(c.u64(what)));
    case GgufType::F32: {
      float f;
      const uint32_t bits = c.u32(what);
      std::memcpy(&f, &bits, 4);
      return GgufValue::f32(f);
    }
    case GgufType::F64: {
      double d;
      const uint64_t bits = c.u64(what);
      std::memcpy(&d, &bits, 8);
      return GgufValue::f64(d);
    }
    case GgufType::Bool: {
      const uint8_t b = c.u8(what);
      if (b > 1) c.fail(what + " is a bool of value " + std::to_string(b) + " (must be 0 or 1)");
      return GgufValue::boolean(b == 1);
    }
    case GgufType::String: return GgufValue::string(c.string(what));
    case GgufType::Array: {
      if (depth >= kMaxArrayNesting) c.fail(what + " nests arrays more than " + std::to_string(kMaxArrayNesting) + " deep");
      const GgufType et = read_type(c, what + " element");
      const uint64_t n = c.u64(what + " element count");
      c.check_count(n, min_value_bytes(et), what + " element");
      std::vector<GgufValue> items;
      items.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) items.push_back(read_value(c, et, what + "[" + std::to_string(i) + "]", depth + 1));
      return GgufValue::array(et, std::move(items));
    }
  }
  c.fail(what + " has an unknown type");
}

void read_header(Cursor& c, GgufMetadata& meta, uint64_t& n_tensors, uint64_t& n_kv) {
  if (c.u32("magic") != kGgufMagic) c.fail("not a GGUF file (the magic is not \"GGUF\")");
  const uint32_t version = c.u32("version");
  if (version == 1) c.fail("GGUF version 1 (a draft with 32-bit counts) is not supported; convert the model again");
  if (version == 0x02000000u || version == 0x03000000u) c.fail("big-endian GGUF files are not supported");
  if (version != 2 && version != 3) c.fail("unsupported GGUF version " + std::to_string(version) + " (2 and 3 are)");
  meta.version = version;
  n_tensors = c.u64("tensor count");
  n_kv = c.u64("metadata count");
}

void read_metadata(Cursor& c, uint64_t n_kv, GgufMetadata& meta) {
  c.check_count(n_kv, 8 + 4 + 1, "metadata");
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = "metadata entry " + std::to_string(i);
    std::string key = c.string(where + " key", 65535);
    if (!keys.insert(key).second) c.fail("duplicate metadata key " + key);
    const GgufType t = read_type(c, "value of " + key);
    meta.entries.emplace_back(key, read_value(c, t, "value of " + key, 0));
  }
  if (const GgufValue* a = meta.find("general.alignment")) {
    if (a->type() != GgufType::U32) c.fail("general.alignment must be a u32, found " + std::string(gguf_type_name(a->type())));
    const uint64_t v = a->as_u64();
    // The spec asks for a multiple of 8; ggml pads with power-of-two masks.
    if (v == 0 || v % 8 != 0 || (v & (v - 1)) != 0)
      c.fail("general.alignment " + std::to_string(v) + " is not a power of two multiple of 8");
    meta.alignment = uint32_t(v);
  }
}

uint64_t checked_numel(Cursor& c, const GgufTensorInfo& t) {
  uint64_t n = 1;
  for (uint64_t d : t.ne)
    if (d > uint64_t(INT64_MAX) || __builtin_mul_overflow(n, d, &n) || n > uint64_t(INT64_MAX))
      c.fail("tensor '" + t.name + "' has an impossible shape");
  return n;
}

GgufTensorInfo read_tensor_info(Cursor& c, uint64_t index) {
  GgufTensorInfo t;
  t.name = c.string("name of tensor " + std::to_string(index), 65535);
  const std::string where = "tensor '" + t.name + "'";
  const uint32_t n_dims = c.u32(where + " dimension count");
  if (n_dims > kGgufMaxDims) c.fail(where + " has " + std::to_string(n_dims) + " dimensions (at most 4)");
  for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.u64(where + " dimension"));
  t.ggml_type = c.u32(where + " type");
  t.offset = c.u64(where + " offset");
  const uint64_t numel = checked_numel(c, t);
  if (const auto dt = dtype_of_ggml(t.ggml_type)) {
    const uint64_t block = uint64_t(dtype_block_elems(*dt));
    if (!t.ne.empty() && t.ne[0] % block != 0)
      c.fail(where + " of type " + std::string(dtype_name(*dt)) + " has rows of " + std::to_string(t.ne[0]) +
             " values, not a multiple of its block size " + std::to_string(block));
    if (__builtin_mul_overflow(numel / block, uint64_t(dtype_block_bytes(*dt)), &t.nbytes))
      c.fail(where + " is too large");
  }
  return t;
}

void check_tensor_bounds(Cursor& c, const GgufFile& f, uint64_t file_size) {
  const uint64_t data_size = file_size - f.data_offset;
  for (const GgufTensorInfo& t : f.tensors) {
    const std::string where = "tensor '" + t.name + "'";
    if (t.offset % f.metadata.alignment != 0)
      c.fail(where + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(f.metadata.alignment));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      c.fail(where + " data (" + std::to_string(t.nbytes) + " bytes at data offset " + std::to_string(t.offset) +
             ") runs past the end of the file; the data section holds " + std::to_string(data_size) + " bytes");
  }
}

}  // namespace

bool has_gguf_magic(const MappedFile& file) {
  return file.size() >= 4 && load_le32(file.data()) == kGgufMagic;
}

std::vector<int64_t> shape_from_ne(const std::vector<uint64_t>& ne) {
  return std::vector<int64_t>(ne.rbegin(), ne.rend());
}

std::vector<uint64_t> ne_from_shape(const std::vector<int64_t>& shape) {
  return std::vector<uint64_t>(shape.rbegin(), shape.rend());
}

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& path) {
  Cursor c(bytes, path);
  GgufFile f;
  uint64_t n_tensors = 0, n_kv = 0;
  read_header(c, f.metadata, n_tensors, n_kv);
  read_metadata(c, n_kv, f.metadata);
  c.check_count(n_tensors, 8 + 4 + 4 + 8, "tensor");
  f.tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) f.tensors.push_back(read_tensor_info(c, i));
  const uint64_t align = f.metadata.alignment;
  f.data_offset = (c.pos() + align - 1) / align * align;
  if (f.data_offset > bytes.size()) {
    if (n_tensors > 0) c.fail("truncated file: the tensor data section is missing");
    f.data_offset = bytes.size();  // a metadata-only file may end without padding
  }
  check_tensor_bounds(c, f, bytes.size());
  return f;
}

Checkpoint read_gguf(std::shared_ptr<const MappedFile> file) {
  GgufFile f = parse_gguf(file->bytes(), file->path());
  std::vector<TensorView> views;
  views.reserve(f.tensors.size());
  for (const GgufTensorInfo& t : f.tensors) {
    const auto dt = dtype_of_ggml(t.ggml_type);
    if (!dt)
      throw error_in(file->path(), "tensor '" + t.name + "' has ggml type " + ggml_type_description(t.ggml_type) +
                                       ", which Aviary does not support (f32, f16, bf16, q8_0, q4_0 and q4_k are)");
    TensorView v;
    v.name = t.name;
    v.dtype = *dt;
    v.shape = shape_from_ne(t.ne);
    v.strides = contiguous_strides(v.shape);
    v.data = file->data() + f.data_offset + t.offset;
    views.push_back(std::move(v));
  }
  auto meta = std::make_shared<const GgufMetadata>(std::move(f.metadata));
  return Checkpoint(std::move(file), CheckpointFormat::Gguf, std::move(views), {}, {}, std::move(meta));
}

}  // namespace aviary
