#include "io/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "io/le_bytes.h"
#include "util/error.h"

namespace aviary {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50, kEnd64Sig = 0x06064b50, kLocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kLocatorSize = 20,
                 kEnd64Size = 56;
constexpr uint32_t kMax32 = 0xffffffffu;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Where the central directory is, as the end records describe it.
struct DirectoryLocation {
  uint64_t offset = 0, size = 0, count = 0;
  uint64_t limit = 0;  // the directory must end before this (the first end record)
};

class ZipParser {
 public:
  explicit ZipParser(const MappedFile& file) : file_(file) {}

  std::vector<ZipEntry> parse() {
    const DirectoryLocation dir = locate_directory();
    std::vector<ZipEntry> entries;
    entries.reserve(size_t(dir.count));  // bounded by size/46 in locate_directory
    std::unordered_set<std::string> names;
    uint64_t pos = dir.offset;
    const uint64_t end = dir.offset + dir.size;
    for (uint64_t i = 0; i < dir.count; ++i) {
      entries.push_back(parse_central_record(pos, end, dir.offset));
      if (!names.insert(entries.back().name).second)
        fail("duplicate ZIP entry '" + entries.back().name + "'");
    }
    return entries;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw error_in(file_.path(), msg); }

  // Bytes [off, off+len) of the file, or an error saying what was cut off.
  const uint8_t* bytes(uint64_t off, uint64_t len, uint64_t limit, const char* what) const {
    if (off > limit || len > limit - off)
      fail(std::string(what) + " at offset " + std::to_string(off) + " (" + std::to_string(len) +
           " bytes) lies outside the archive, past offset " + std::to_string(limit) +
           "; file truncated or corrupted");
    return file_.data() + off;
  }

  // The end-of-central-directory record is the last 22 bytes unless the
  // archive has a comment; scan back over at most a 64 KiB comment.
  uint64_t find_end_record() const {
    const uint64_t size = file_.size();
    if (size < kEndSize)
      fail("not a valid ZIP archive: only " + std::to_string(size) + " bytes (file truncated?)");
    const uint64_t lowest = size - kEndSize > 0xffff ? size - kEndSize - 0xffff : 0;
    for (uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
      const uint8_t* p = file_.data() + pos;
      if (load_le32(p) == kEndSig && pos + kEndSize + load_le16(p + 20) == size) return pos;
    }
    fail("not a valid ZIP archive: end-of-central-directory record not found (file truncated?)");
  }

  DirectoryLocation locate_directory() const {
    const uint64_t end_pos = find_end_record();
    const uint8_t* e = file_.data() + end_pos;
    if (load_le16(e + 4) != 0 || load_le16(e + 6) != 0)
      fail("multi-disk ZIP archives are not supported");
    DirectoryLocation dir{load_le32(e + 16), load_le32(e + 12), load_le16(e + 10), end_pos};
    if (end_pos >= kLocatorSize && load_le32(e - kLocatorSize) == kLocatorSig)
      dir = read_zip64_end(end_pos - kLocatorSize);
    else if (dir.count == 0xffff || dir.size == kMax32 || dir.offset == kMax32)
      fail("ZIP end record needs ZIP64 values but the ZIP64 locator is missing (file corrupted)");
    if (dir.offset > dir.limit || dir.size > dir.limit - dir.offset)
      fail("central directory (offset " + std::to_string(dir.offset) + ", " +
           std::to_string(dir.size) +
           " bytes) lies outside the archive; file truncated or corrupted");
    if (dir.count > dir.size / kCentralSize)
      fail("central directory claims " + std::to_string(dir.count) + " entries but its " +
           std::to_string(dir.size) + " bytes hold at most " +
           std::to_string(dir.size / kCentralSize) + "; file corrupted");
    return dir;
  }

  DirectoryLocation read_zip64_end(uint64_t locator_pos) const {
    const uint8_t* loc = file_.data() + locator_pos;
    const uint64_t rec_pos = load_le64(loc + 8);
    const uint8_t* r =
        bytes(rec_pos, kEnd64Size, locator_pos, "ZIP64 end-of-central-directory record");
    if (load_le32(r) != kEnd64Sig)
      fail("bad ZIP64 end-of-central-directory signature at offset " + std::to_string(rec_pos) +
           "; file corrupted");
    if (load_le32(r + 16) != 0 || load_le32(r + 20) != 0)
      fail("multi-disk ZIP archives are not supported");
    return {load_le64(r + 48), load_le64(r + 40), load_le64(r + 32), rec_pos};
  }

  // Replaces 0xffffffff fields by their values from the ZIP64 extra field (id 1).
  void apply_zip64_extra(const uint8_t* extra, size_t len, const std::string& name, uint64_t& usize,
                         uint64_t& csize, uint64_t& offset) const {
    uint64_t* fields[] = {&usize, &csize, &offset};
    for (size_t pos = 0; pos + 4 <= len;) {
      const uint16_t id = load_le16(extra + pos), block = load_le16(extra + pos + 2);
      if (block > len - pos - 4)
        fail("entry '" + name + "': malformed extra field; file corrupted");
      if (id == 1) {
        size_t at = pos + 4;
        for (uint64_t* f : fields) {
          if (*f != kMax32) continue;
          if (at + 8 > pos + 4 + block)
            fail("entry '" + name + "': ZIP64 extra field too short; file corrupted");
          *f = load_le64(extra + at);
          at += 8;
        }
        return;
      }
      pos += 4 + block;
    }
    for (uint64_t* f : fields)
      if (*f == kMax32)
        fail("entry '" + name + "': ZIP64 value missing from its extra field; file corrupted");
  }

  ZipEntry parse_central_record(uint64_t& pos, uint64_t end, uint64_t data_limit) const {
    const uint8_t* c = bytes(pos, kCentralSize, end, "central directory record");
    if (load_le32(c) != kCentralSig)
      fail("bad central directory signature at offset " + std::to_string(pos) + "; file corrupted");
    const uint16_t flags = load_le16(c + 8), method = load_le16(c + 10);
    const size_t name_len = load_le16(c + 28), extra_len = load_le16(c + 30),
                 comment_len = load_le16(c + 32);
    const uint8_t* name_p = bytes(pos + kCentralSize, name_len + extra_len + comment_len, end,
                                  "central directory record");
    ZipEntry e;
    e.name.assign(reinterpret_cast<const char*>(name_p), name_len);
    e.crc32 = load_le32(c + 16);
    uint64_t csize = load_le32(c + 20), usize = load_le32(c + 24), local = load_le32(c + 42);
    apply_zip64_extra(name_p + name_len, extra_len, e.name, usize, csize, local);
    pos += kCentralSize + name_len + extra_len + comment_len;

    if (flags & 1) fail("entry '" + e.name + "' is encrypted; not supported");
    check_stored(e.name, method);
    if (csize != usize)
      fail("entry '" + e.name + "' is stored but its sizes differ (" + std::to_string(csize) +
           " vs " + std::to_string(usize) + "); file corrupted");
    e.size = usize;
    e.data_offset = parse_local_header(local, e, data_limit);
    return e;
  }

  void check_stored(const std::string& name, uint16_t method) const {
    if (method == 0) return;
    fail("entry '" + name + "' is compressed (method " + std::to_string(method) +
         (method == 8 ? ", deflate" : "") +
         "); only stored (uncompressed) entries are supported, as torch.save writes them");
  }

  // Local header fields may be zero (torch writes sizes in a data descriptor),
  // so only the signature, method and name are checked against the directory.
  uint64_t parse_local_header(uint64_t off, const ZipEntry& e, uint64_t data_limit) const {
    const uint8_t* h =
        bytes(off, kLocalSize, data_limit, ("local header of '" + e.name + "'").c_str());
    if (load_le32(h) != kLocalSig)
      fail("bad local header signature for entry '" + e.name + "' at offset " +
           std::to_string(off) + "; file corrupted");
    check_stored(e.name, load_le16(h + 8));
    const size_t name_len = load_le16(h + 26), extra_len = load_le16(h + 28);
    const uint8_t* name = bytes(off + kLocalSize, name_len + extra_len, data_limit, "local header");
    if (std::string_view(reinterpret_cast<const char*>(name), name_len) != e.name)
      fail("local header name does not match central directory entry '" + e.name +
           "'; file corrupted");
    const uint64_t data = off + kLocalSize + name_len + extra_len;
    bytes(data, e.size, data_limit, ("data of entry '" + e.name + "'").c_str());
    return data;
  }

  const MappedFile& file_;
};

}  // namespace

std::vector<ZipEntry> read_zip_directory(const MappedFile& file) { return ZipParser(file).parse(); }

bool has_zip_magic(const MappedFile& file) {
  return file.size() >= 4 && load_le32(file.data()) == kLocalSig;
}

uint32_t crc32_of(const uint8_t* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  constexpr size_t kChunk = size_t(1) << 30;  // zlib takes a 32-bit length
  for (size_t done = 0; done < size;) {
    const size_t n = std::min(kChunk, size - done);
    crc = crc32(crc, data + done, uInt(n));
    done += n;
  }
  return uint32_t(crc);
}

void check_entry_crc(const MappedFile& file, const ZipEntry& entry) {
  const uint32_t actual = crc32_of(file.data() + entry.data_offset, size_t(entry.size));
  if (actual != entry.crc32)
    throw error_in(file.path(), "CRC-32 mismatch in entry '" + entry.name + "': recorded " +
                                    hex32(entry.crc32) + ", computed " + hex32(actual) +
                                    " (file corrupted)");
}

}  // namespace aviary
