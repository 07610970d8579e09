// Little-endian integer access for the binary formats (ZIP, pickle,
// safetensors). Reads go through memcpy so unaligned offsets are fine.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace aviary {

inline uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) {
  return uint64_t(load_le32(p)) | (uint64_t(load_le32(p + 4)) << 32);
}

inline void append_le16(std::string& out, uint16_t v) {
  out += char(v & 0xff);
  out += char(v >> 8);
}
inline void append_le32(std::string& out, uint32_t v) {
  append_le16(out, uint16_t(v));
  append_le16(out, uint16_t(v >> 16));
}
inline void append_le64(std::string& out, uint64_t v) {
  append_le32(out, uint32_t(v));
  append_le32(out, uint32_t(v >> 32));
}

}  // namespace aviary
