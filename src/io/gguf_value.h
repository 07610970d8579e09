// GGUF metadata values and the ggml tensor types Aviary knows, as the format
// specification (ggml docs/gguf.md) defines them. Shared by the reader, the
// writer and Checkpoint (which carries a GGUF file's metadata).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "util/dtype.h"

namespace aviary {

// gguf_metadata_value_type, with the spec's numbering.
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
inline constexpr uint32_t kGgufTypeCount = 13;

std::string_view gguf_type_name(GgufType t);  // "u32", "string", "array", ...

// One metadata value. Integers keep their width in `type`; their value is
// held as int64 (every GGUF integer type fits, u64 above 2^63 wraps and is
// read back through as_u64()).
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return {GgufType::U8, int64_t(v)}; }
  static GgufValue i8(int8_t v) { return {GgufType::I8, int64_t(v)}; }
  static GgufValue u16(uint16_t v) { return {GgufType::U16, int64_t(v)}; }
  static GgufValue i16(int16_t v) { return {GgufType::I16, int64_t(v)}; }
  static GgufValue u32(uint32_t v) { return {GgufType::U32, int64_t(v)}; }
  static GgufValue i32(int32_t v) { return {GgufType::I32, int64_t(v)}; }
  static GgufValue u64(uint64_t v) { return {GgufType::U64, int64_t(v)}; }
  static GgufValue i64(int64_t v) { return {GgufType::I64, v}; }
  static GgufValue f32(float v) { return {GgufType::F32, double(v)}; }
  static GgufValue f64(double v) { return {GgufType::F64, v}; }
  static GgufValue boolean(bool v) { return {GgufType::Bool, v}; }
  static GgufValue string(std::string v) { return {GgufType::String, std::move(v)}; }
  // Elements must all have type `element_type` (checked by the writer).
  static GgufValue array(GgufType element_type, std::vector<GgufValue> items);

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // arrays only
  bool is_integer() const;

  // Typed access; throw aviary::Error("expected ..., found ...") on a mismatch
  // so callers can prefix the key.
  int64_t as_int() const;     // any integer type
  uint64_t as_u64() const;    // any integer type, non-negative
  double as_float() const;    // f32 or f64
  bool as_bool() const;
  const std::string& as_string() const;
  const std::vector<GgufValue>& as_array() const;

  bool operator==(const GgufValue&) const = default;

 private:
  using Data = std::variant<int64_t, double, bool, std::string, std::vector<GgufValue>>;
  GgufValue(GgufType t, Data d) : type_(t), data_(std::move(d)) {}
  GgufType type_ = GgufType::U8;
  GgufType element_type_ = GgufType::U8;
  Data data_ = int64_t(0);
};

// The key/value pairs of a file, in file order (the order is kept so a
// rewrite is byte-identical).
struct GgufMetadata {
  uint32_t version = 3;
  uint32_t alignment = 32;  // general.alignment, or the spec's default
  std::vector<std::pair<std::string, GgufValue>> entries;

  const GgufValue* find(std::string_view key) const;
  // Throws "missing metadata key KEY" (callers prefix the file).
  const GgufValue& get(std::string_view key) const;
  void set(std::string key, GgufValue value);  // replaces or appends
};

// ggml_type ids of the tensor types Aviary reads and writes.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30,
};

uint32_t ggml_type_of(DType t);
// The DType of a ggml type id, or nothing for types Aviary does not support.
std::optional<DType> dtype_of_ggml(uint32_t ggml_type);
// "q5_k (13)": for error messages about any ggml type id.
std::string ggml_type_description(uint32_t ggml_type);

}  // namespace aviary
