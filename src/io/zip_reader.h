// The directory of a ZIP archive as torch.save writes it: stored (never
// compressed) entries, ZIP64 records for archives and entries over 4 GiB.
// Only the directory is parsed; entry bytes are used in place in the map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace aviary {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // where the entry's bytes start in the file
  uint64_t size = 0;
  uint32_t crc32 = 0;  // as recorded in the central directory
};

// Parses the end-of-central-directory record (ZIP64 when present), the
// central directory and every local header; returns the entries in directory
// order. Throws aviary::Error naming the file for a truncated or damaged
// archive, an encrypted or compressed entry, or data that lies outside the file.
std::vector<ZipEntry> read_zip_directory(const MappedFile& file);

// True if the file starts with a ZIP local-file-header signature.
bool has_zip_magic(const MappedFile& file);

// CRC-32 (the ZIP/zlib polynomial) of any number of bytes.
uint32_t crc32_of(const uint8_t* data, size_t size);

// Throws "FILE: CRC-32 mismatch in entry NAME ..." if the entry's bytes do not
// match its recorded checksum.
void check_entry_crc(const MappedFile& file, const ZipEntry& entry);

}  // namespace aviary
