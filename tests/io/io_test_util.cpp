#include "io_test_util.h"

#include <algorithm>

#include "io/checkpoint.h"
#include "io/le_bytes.h"
#include "io/zip_reader.h"

namespace aviary::test {

namespace fs = std::filesystem;

fs::path small_pth() { return refdata_case("v4_tiny_L2_C128_V1000_bf16") / "model.pth"; }

std::string expect_error(const std::function<void()>& fn,
                         std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
    return msg;
  }
  ADD_FAILURE() << "no aviary::Error thrown";
  return "";
}

std::string expect_open_error(const fs::path& path, std::initializer_list<std::string> parts) {
  const std::string msg = expect_error([&] { Checkpoint::open(path.string()); }, parts);
  EXPECT_NE(msg.find(path.string()), std::string::npos) << "file not named in: " << msg;
  return msg;
}

std::vector<OwnedRecord> read_records(const fs::path& pth) {
  const auto file = MappedFile::open(pth.string());
  std::vector<OwnedRecord> out;
  for (const ZipEntry& e : read_zip_directory(*file))
    out.push_back(
        {e.name, std::string(reinterpret_cast<const char*>(file->data() + e.data_offset), e.size)});
  return out;
}

void write_records(const fs::path& path, const std::vector<OwnedRecord>& records) {
  std::vector<ZipRecord> zr;
  for (const OwnedRecord& r : records)
    zr.push_back({r.name, {reinterpret_cast<const uint8_t*>(r.bytes.data()), r.bytes.size()}});
  write_torch_zip(path.string(), zr);
}

OwnedRecord& find_record(std::vector<OwnedRecord>& records, const std::string& suffix) {
  for (OwnedRecord& r : records)
    if (r.name.size() >= suffix.size() &&
        r.name.compare(r.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return r;
  throw std::runtime_error("no record ending in " + suffix);
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at == std::string::npos) throw std::runtime_error("pattern not found");
  return s.replace(at, from.size(), to);
}

Pickle& Pickle::str(const std::string& s) {
  bytes += 'X';
  append_le32(bytes, uint32_t(s.size()));
  bytes += s;
  return *this;
}

Pickle& Pickle::short_str(const std::string& s) {
  bytes += '\x8c';
  bytes += char(s.size());
  bytes += s;
  return *this;
}

Pickle& Pickle::integer(int64_t v) {
  if (v >= 0 && v < 256) return op('K').raw(std::string(1, char(v)));
  if (v >= 0 && v < 65536) {
    op('M');
    append_le16(bytes, uint16_t(v));
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op('J');
    append_le32(bytes, uint32_t(int32_t(v)));
  } else {
    op('\x8a').raw(std::string(1, char(8)));
    append_le64(bytes, uint64_t(v));
  }
  return *this;
}

Pickle& Pickle::ints(const std::vector<int64_t>& v) {
  op('(');
  for (int64_t x : v) integer(x);
  return op('t');
}

Pickle& Pickle::storage(const std::string& type, const std::string& key, int64_t numel) {
  op('(').str("storage").global("torch", type).str(key).str("cpu").integer(numel).op('t');
  return op('Q');
}

Pickle& Pickle::tensor(const std::string& type, const std::string& key, int64_t numel,
                       int64_t offset, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides) {
  global("torch._utils", "_rebuild_tensor_v2").op('(');
  storage(type, key, numel).integer(offset).ints(shape).ints(strides).op('\x89');
  global("collections", "OrderedDict").op(')').op('R');
  return op('t').op('R');
}

}  // namespace aviary::test
