#include "io/zip_writer.h"

#include <algorithm>

#include "util/atomic_file.h"
#include "io/le_bytes.h"
#include "io/zip_reader.h"
#include "util/error.h"

namespace aviary {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kDescriptorSig = 0x08074b50;
constexpr uint32_t kEndSig = 0x06054b50, kEnd64Sig = 0x06064b50, kLocatorSig = 0x07064b50;
constexpr uint16_t kFlags = 0x0808;  // bit 3: sizes in a data descriptor; bit 11: UTF-8 names
constexpr uint64_t kAlignment = 64;  // torch aligns every record so it can be used in place
constexpr uint32_t kMax32 = 0xffffffffu;

struct Placed {
  const ZipRecord* record;
  uint64_t offset;
  uint32_t crc;
  bool big_size, big_offset;  // which values live in the ZIP64 extra field
};

// ZIP64 extra field (id 1): uncompressed and compressed size, then the local
// header offset, each present only when the 32-bit field cannot hold it.
std::string zip64_extra(const Placed& p) {
  std::string f;
  if (!p.big_size && !p.big_offset) return f;
  append_le16(f, 1);
  append_le16(f, uint16_t((p.big_size ? 16 : 0) + (p.big_offset ? 8 : 0)));
  if (p.big_size) {
    append_le64(f, p.record->data.size());
    append_le64(f, p.record->data.size());
  }
  if (p.big_offset) append_le64(f, p.offset);
  return f;
}

// torch's "FB" padding field: 2-byte id, 2-byte length, then 'Z's up to the
// next 64-byte boundary. `start` is where the field begins.
std::string alignment_field(uint64_t start) {
  const uint64_t data = start + 4;
  const uint16_t pad = uint16_t((kAlignment - data % kAlignment) % kAlignment);
  std::string f = "FB";
  append_le16(f, pad);
  f.append(pad, 'Z');
  return f;
}

Placed write_entry(AtomicFile& out, const ZipRecord& r, uint64_t threshold) {
  Placed p{&r, out.position(), crc32_of(r.data.data(), r.data.size()), r.data.size() >= threshold,
           out.position() >= threshold};
  std::string extra = zip64_extra(p);
  extra += alignment_field(p.offset + 30 + r.name.size() + extra.size());
  std::string h;
  append_le32(h, kLocalSig);
  append_le16(h, 0);  // version needed, as miniz writes it for stored data
  append_le16(h, kFlags);
  for (int k = 0; k < 3; ++k) append_le16(h, 0);  // method (stored), time, date
  for (int k = 0; k < 3; ++k) append_le32(h, 0);  // CRC, sizes: in the descriptor
  append_le16(h, uint16_t(r.name.size()));
  append_le16(h, uint16_t(extra.size()));
  out.write(h + r.name + extra);
  out.write(r.data.data(), r.data.size());

  std::string d;
  append_le32(d, kDescriptorSig);
  append_le32(d, p.crc);
  const bool wide = p.big_size || p.big_offset;  // miniz widens it whenever ZIP64 extra is present
  for (int k = 0; k < 2; ++k)
    wide ? append_le64(d, r.data.size()) : append_le32(d, uint32_t(r.data.size()));
  out.write(d);
  return p;
}

std::string central_record(const Placed& p) {
  const uint64_t size = p.record->data.size();
  const std::string extra = zip64_extra(p);
  std::string c;
  append_le32(c, kCentralSig);
  append_le16(c, 0);  // version made by
  append_le16(c, 0);  // version needed
  append_le16(c, kFlags);
  for (int k = 0; k < 3; ++k) append_le16(c, 0);  // method, time, date
  append_le32(c, p.crc);
  append_le32(c, p.big_size ? kMax32 : uint32_t(size));
  append_le32(c, p.big_size ? kMax32 : uint32_t(size));
  append_le16(c, uint16_t(p.record->name.size()));
  append_le16(c, uint16_t(extra.size()));
  for (int k = 0; k < 3; ++k) append_le16(c, 0);  // comment length, disk, internal attributes
  append_le32(c, 0);                              // external attributes
  append_le32(c, p.big_offset ? kMax32 : uint32_t(p.offset));
  return c + p.record->name + extra;
}

std::string end_records(uint64_t count, uint64_t dir_offset, uint64_t dir_size) {
  std::string e;
  append_le32(e, kEnd64Sig);
  append_le64(e, 44);      // size of the rest of this record
  append_le16(e, 0x031e);  // made by: Unix, ZIP 3.0 (as miniz)
  append_le16(e, 45);      // needed: ZIP64
  append_le32(e, 0);
  append_le32(e, 0);
  append_le64(e, count);
  append_le64(e, count);
  append_le64(e, dir_size);
  append_le64(e, dir_offset);

  append_le32(e, kLocatorSig);
  append_le32(e, 0);
  append_le64(e, dir_offset + dir_size);  // where the ZIP64 end record starts
  append_le32(e, 1);

  append_le32(e, kEndSig);
  append_le16(e, 0);
  append_le16(e, 0);
  append_le16(e, uint16_t(std::min<uint64_t>(count, 0xffff)));
  append_le16(e, uint16_t(std::min<uint64_t>(count, 0xffff)));
  append_le32(e, uint32_t(std::min<uint64_t>(dir_size, kMax32)));
  append_le32(e, uint32_t(std::min<uint64_t>(dir_offset, kMax32)));
  append_le16(e, 0);  // comment length
  return e;
}

}  // namespace

void write_torch_zip(const std::string& path, const std::vector<ZipRecord>& records,
                     uint64_t zip64_threshold) {
  for (const ZipRecord& r : records)
    if (r.name.size() > 0xffff) throw error_in(path, "ZIP record name longer than 65535 bytes");
  AtomicFile out(path);
  std::vector<Placed> placed;
  placed.reserve(records.size());
  for (const ZipRecord& r : records) placed.push_back(write_entry(out, r, zip64_threshold));
  const uint64_t dir_offset = out.position();
  for (const Placed& p : placed) out.write(central_record(p));
  out.write(end_records(placed.size(), dir_offset, out.position() - dir_offset));
  out.commit();
}

}  // namespace aviary
