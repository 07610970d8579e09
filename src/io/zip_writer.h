// Writes a ZIP archive of stored records laid out byte for byte as
// torch.save's writer (PyTorch's miniz) lays them out, so PyTorch reads it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace aviary {

struct ZipRecord {
  std::string name;
  std::span<const uint8_t> data;  // not owned
};

// Sizes and offsets from here on need ZIP64 extra fields (4 GiB - 1, as miniz).
constexpr uint64_t kZip64Threshold = 0xffffffffu;

// Records in the order given, each as: a local header with zero CRC and sizes
// (flag bit 3), an extra field padding the data to a 64-byte boundary
// ("FB" + length + 'Z's), the data, a data descriptor. Then the central
// directory, and always the ZIP64 end records. Entries whose size or offset
// reaches `zip64_threshold` get ZIP64 extra fields; tests lower it to
// exercise those without writing 4 GiB. Written atomically (temp + rename).
void write_torch_zip(const std::string& path, const std::vector<ZipRecord>& records,
                     uint64_t zip64_threshold = kZip64Threshold);

}  // namespace aviary
