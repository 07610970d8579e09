#include "io/pth_reader.h"

#include <unordered_map>

#include "io/pickle_reader.h"
#include "util/error.h"

namespace aviary {
namespace {

using EntryIndex = std::unordered_map<std::string, const ZipEntry*>;

// The folder every record lives in: torch names it after the file, but
// released checkpoints use anything, so it is taken from the data.pkl record.
std::string find_root(const std::vector<ZipEntry>& entries, const std::string& path) {
  for (const ZipEntry& e : entries) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0)
      return e.name.substr(0, slash);
  }
  throw error_in(path, "ZIP archive has no <folder>/data.pkl record; not a torch.save checkpoint");
}

// torch >= 2 records the byte order; data here is used in place, so it must
// be the little-endian order of every machine Aviary runs on.
void check_byteorder(const MappedFile& file, const EntryIndex& index, const std::string& root) {
  const auto it = index.find(root + "/byteorder");
  if (it == index.end()) return;
  const ZipEntry& e = *it->second;
  const std::string_view order(reinterpret_cast<const char*>(file.data() + e.data_offset), e.size);
  if (order != "little")
    throw error_in(file.path(), "byteorder record says '" + std::string(order.substr(0, 16)) +
                                    "'; only little-endian checkpoints are supported");
}

// One past the last element the tensor touches, or -1 on overflow.
int64_t extent_end(const PickledTensor& t) {
  int64_t end = t.storage_offset;
  for (int64_t d : t.shape)
    if (d == 0) return end;  // an empty tensor reads nothing
  int64_t span = 0;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    int64_t step = 0;
    if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &step) ||
        __builtin_add_overflow(span, step, &span))
      return -1;
  }
  if (__builtin_add_overflow(end, span, &end) || __builtin_add_overflow(end, 1, &end)) return -1;
  return end;
}

bool numel_fits(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return false;
  return true;
}

// The strided view must stay inside its storage (a hostile offset or stride
// would otherwise read outside the file map).
void check_extent(const MappedFile& file, const PickledTensor& t, const std::string& where,
                  const std::string& record) {
  const std::string desc = where + " (shape " + shape_string(t.shape) + ", strides " +
                           shape_string(t.strides) + ", offset " +
                           std::to_string(t.storage_offset) + ")";
  if (!numel_fits(t.shape)) throw error_in(file.path(), desc + " has more than 2^63 elements");
  const int64_t end = extent_end(t);
  if (end < 0 || end > t.storage.numel)
    throw error_in(file.path(),
                   desc + " needs " +
                       (end < 0 ? std::string("more than 2^63") : std::to_string(end)) +
                       " elements but its storage '" + record + "' holds " +
                       std::to_string(t.storage.numel) + "; data out of bounds");
}

TensorView make_view(const MappedFile& file, const PickledTensor& t, const EntryIndex& index,
                     const std::string& root) {
  const std::string where = "tensor '" + t.name + "'";
  const std::string record = root + "/data/" + t.storage.key;
  const auto it = index.find(record);
  if (it == index.end())
    throw error_in(file.path(), where + ": storage record '" + record + "' is missing");
  const ZipEntry& blob = *it->second;

  const uint64_t esize = dtype_size(t.storage.dtype);
  if (blob.size / esize != uint64_t(t.storage.numel) || blob.size % esize != 0)
    throw error_in(file.path(), where + ": storage record '" + record + "' holds " +
                                    std::to_string(blob.size) + " bytes, expected " +
                                    std::to_string(t.storage.numel) + " x " +
                                    std::to_string(esize) + " bytes (" + t.storage.type_name + ")");
  check_extent(file, t, where, record);
  TensorView v;
  v.name = t.name;
  v.dtype = t.storage.dtype;
  v.shape = t.shape;
  v.strides = t.strides;
  v.data = file.data() + blob.data_offset + uint64_t(t.storage_offset) * esize;
  return v;
}

}  // namespace

Checkpoint read_pth(std::shared_ptr<const MappedFile> file) {
  std::vector<ZipEntry> entries = read_zip_directory(*file);
  EntryIndex index;
  for (const ZipEntry& e : entries) index.emplace(e.name, &e);
  const std::string root = find_root(entries, file->path());
  check_byteorder(*file, index, root);

  // data.pkl is small and steers every offset, so its checksum is always checked.
  const ZipEntry& pkl = *index.at(root + "/data.pkl");
  check_entry_crc(*file, pkl);
  const auto pickled = read_torch_pickle({file->data() + pkl.data_offset, size_t(pkl.size)},
                                         file->path() + ": " + pkl.name);
  std::vector<TensorView> views;
  views.reserve(pickled.size());
  for (const PickledTensor& t : pickled) views.push_back(make_view(*file, t, index, root));
  return Checkpoint(std::move(file), CheckpointFormat::Pth, std::move(views), std::move(entries));
}

}  // namespace aviary
