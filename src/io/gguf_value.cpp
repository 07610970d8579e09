#include "io/gguf_value.h"

#include "util/error.h"

namespace aviary {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> items) {
  GgufValue v(GgufType::Array, std::move(items));
  v.element_type_ = element_type;
  return v;
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64:
      return true;
    default:
      return false;
  }
}

namespace {
Error type_mismatch(const char* expected, GgufType found) {
  return Error(std::string("expected ") + expected + ", found " + std::string(gguf_type_name(found)));
}
}  // namespace

int64_t GgufValue::as_int() const {
  if (!is_integer()) throw type_mismatch("an integer", type_);
  return std::get<int64_t>(data_);
}

uint64_t GgufValue::as_u64() const {
  const int64_t v = as_int();
  if (v < 0 && type_ != GgufType::U64) throw Error("expected a non-negative integer, found " + std::to_string(v));
  return uint64_t(v);
}

double GgufValue::as_float() const {
  if (type_ != GgufType::F32 && type_ != GgufType::F64) throw type_mismatch("a float", type_);
  return std::get<double>(data_);
}

bool GgufValue::as_bool() const {
  if (type_ != GgufType::Bool) throw type_mismatch("a bool", type_);
  return std::get<bool>(data_);
}

const std::string& GgufValue::as_string() const {
  if (type_ != GgufType::String) throw type_mismatch("a string", type_);
  return std::get<std::string>(data_);
}

const std::vector<GgufValue>& GgufValue::as_array() const {
  if (type_ != GgufType::Array) throw type_mismatch("an array", type_);
  return std::get<std::vector<GgufValue>>(data_);
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

const GgufValue& GgufMetadata::get(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  throw Error("missing metadata key " + std::string(key));
}

void GgufMetadata::set(std::string key, GgufValue value) {
  for (auto& [k, v] : entries)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries.emplace_back(std::move(key), std::move(value));
}

uint32_t ggml_type_of(DType t) {
  switch (t) {
    case DType::F32: return uint32_t(GgmlType::F32);
    case DType::F16: return uint32_t(GgmlType::F16);
    case DType::BF16: return uint32_t(GgmlType::BF16);
    case DType::Q8_0: return uint32_t(GgmlType::Q8_0);
    case DType::Q4_0: return uint32_t(GgmlType::Q4_0);
    case DType::Q4_K: return uint32_t(GgmlType::Q4_K);
    case DType::Q4_1: return uint32_t(GgmlType::Q4_1);
    case DType::Q5_0: return uint32_t(GgmlType::Q5_0);
    case DType::Q5_1: return uint32_t(GgmlType::Q5_1);
    case DType::Q5_K: return uint32_t(GgmlType::Q5_K);
    case DType::Q6_K: return uint32_t(GgmlType::Q6_K);
  }
  return ~0u;
}

std::optional<DType> dtype_of_ggml(uint32_t ggml_type) {
  switch (GgmlType(ggml_type)) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::BF16: return DType::BF16;
    case GgmlType::Q8_0: return DType::Q8_0;
    case GgmlType::Q4_0: return DType::Q4_0;
    case GgmlType::Q4_K: return DType::Q4_K;
    case GgmlType::Q4_1: return DType::Q4_1;
    case GgmlType::Q5_0: return DType::Q5_0;
    case GgmlType::Q5_1: return DType::Q5_1;
    case GgmlType::Q5_K: return DType::Q5_K;
    case GgmlType::Q6_K: return DType::Q6_K;
  }
  return std::nullopt;
}

std::string ggml_type_description(uint32_t ggml_type) {
  // Names of ggml's type ids (ggml.h); removed ids have none.
  static constexpr const char* kNames[] = {
      "f32",     "f16",    "q4_0",    "q4_1",  "q4_2",   "q4_3",  "q5_0",  "q5_1",  "q8_0",  "q8_1",
      "q2_k",    "q3_k",   "q4_k",    "q5_k",  "q6_k",   "q8_k",  "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
      "iq4_nl",  "iq3_s",  "iq2_s",   "iq4_xs", "i8",    "i16",   "i32",   "i64",   "f64",   "iq1_m",
      "bf16",    "q4_0_4_4", "q4_0_4_8", "q4_0_8_8", "tq1_0", "tq2_0", "iq4_nl_4_4", "iq4_nl_4_8",
      "iq4_nl_8_8", "mxfp4"};
  const std::string id = std::to_string(ggml_type);
  if (ggml_type < std::size(kNames)) return std::string(kNames[ggml_type]) + " (" + id + ")";
  return "unknown type " + id;
}

}  // namespace aviary
