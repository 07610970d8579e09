// Reading and writing Aviary state files (docs/state-format.md).
#include "model/state_file.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "io/le_bytes.h"
#include "model/state_file_format.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace aviary {

// The tensor data is the State's buffer written as it is in memory.
static_assert(std::endian::native == std::endian::little, "state files are little-endian");

namespace {

using namespace state_format;

uint32_t crc_update(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes 32-bit lengths
    const uInt n = uInt(std::min<size_t>(size, size_t(1) << 30));
    crc = uint32_t(crc32(crc, p, n));
    p += n;
    size -= n;
  }
  return crc;
}

std::string hex_crc(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// The fixed header, tensor table and padding up to the tensor data.
std::string encode_header(const Model& model, const State& state, const StateExtras& extras) {
  const ModelConfig& c = model.config();
  std::string table;
  for (const auto& t : state.layout()) {
    append_le32(table, uint32_t(t.name.size()));
    table += t.name;
    append_le32(table, uint32_t(t.shape.size()));
    for (int64_t d : t.shape) append_le64(table, uint64_t(d));
  }
  const uint64_t data_offset = round_up(kFixedHeaderSize + table.size(), kDataAlign);
  const uint64_t n_floats = state.raw().size();
  std::string h(kMagic, sizeof kMagic);
  append_le32(h, kStateFormatVersion);
  append_le32(h, kDTypeF32);
  append_le64(h, data_offset + 4 * n_floats + 4 * extras.tokens.size() + extras.text.size() + kTrailerSize);
  append_le64(h, data_offset);
  append_le32(h, uint32_t(arch_generation(c.arch)));
  std::string version = c.version.substr(0, kVersionFieldSize - 1);
  version.resize(kVersionFieldSize, '\0');
  h += version;
  for (int64_t v : {c.n_layer, c.n_embd, c.n_head, c.head_size, c.vocab_size}) append_le64(h, uint64_t(v));
  append_le64(h, state.num_tensors());
  append_le64(h, n_floats);
  append_le64(h, std::stoull(model_fingerprint(model), nullptr, 16));
  append_le64(h, uint64_t(extras.token_count));
  append_le64(h, extras.tokens.size());
  append_le64(h, extras.text.size());
  append_le64(h, 0);  // reserved
  if (h.size() != kFixedHeaderSize) throw std::logic_error("state header layout out of step with its offsets");
  h += table;
  h.resize(size_t(data_offset), '\0');
  return h;
}

// The bytes of a state file (mapped from disk or held in memory) and the
// name that errors give them: a path, or e.g. a cache key.
struct StateBytes {
  const uint8_t* data;
  size_t size;
  const std::string& path;
};

// The bytes, checked: integrity first (magic, version, size, checksum), then
// every length field against the bytes actually there, so a damaged or
// hostile header can never cause a large allocation or a read past the end.
struct ParsedFile {
  StateFileInfo info;
  uint64_t data_offset = 0;
};

void check_integrity(const StateBytes& f) {
  const std::string& path = f.path;
  const size_t n = f.size;
  if (n == 0) throw error_in(path, "empty file, not an Aviary state file");
  if (std::memcmp(f.data, kMagic, std::min(n, sizeof kMagic)) != 0)
    throw error_in(path, "not an Aviary state file (it does not start with \"AVIARYST\")");
  if (n < kFixedHeaderSize + kTrailerSize)
    throw error_in(path, "truncated state file: " + std::to_string(n) + " bytes, less than the " +
                             std::to_string(kFixedHeaderSize + kTrailerSize) + " of an empty one");
  const uint32_t version = load_le32(f.data + kOffVersion);
  if (version == 0 || version > kStateFormatVersion)
    throw error_in(path, "state file format version " + std::to_string(version) +
                             (version ? " is newer than this Aviary reads (" + std::to_string(kStateFormatVersion) +
                                            "); upgrade Aviary"
                                      : " is invalid"));
  const uint64_t recorded = load_le64(f.data + kOffFileSize);
  if (recorded != n)
    throw error_in(path, "state file is truncated or damaged: its header records " + std::to_string(recorded) +
                             " bytes, the file has " + std::to_string(n));
  const uint32_t stored = load_le32(f.data + n - kTrailerSize);
  const uint32_t actual = crc_update(0, f.data, n - kTrailerSize);
  if (stored != actual)
    throw error_in(path, "state file is damaged: CRC-32 mismatch (stored " + hex_crc(stored) + ", computed " +
                             hex_crc(actual) + ")");
}

// Bounds-checked little-endian reads over [pos, end).
class Cursor {
 public:
  Cursor(const StateBytes& f, size_t pos, size_t end) : f_(f), pos_(pos), end_(end) {}
  uint32_t u32() { return load_le32(take(4)); }
  uint64_t u64() { return load_le64(take(8)); }
  std::string bytes(size_t n) { return std::string(reinterpret_cast<const char*>(take(n)), n); }
  size_t left() const { return end_ - pos_; }

 private:
  const uint8_t* take(size_t n) {
    if (n > left()) throw error_in(f_.path, "damaged state file: its tensor table runs past the tensor data");
    const uint8_t* p = f_.data + pos_;
    pos_ += n;
    return p;
  }
  const StateBytes& f_;
  size_t pos_, end_;
};

[[noreturn]] void damaged(const std::string& path, const std::string& what) {
  throw error_in(path, "damaged state file: " + what);
}

std::vector<StateTensorInfo> read_table(const StateBytes& f, uint64_t n_tensors, uint64_t data_offset,
                                        uint64_t n_floats) {
  Cursor cur(f, kFixedHeaderSize, size_t(data_offset));
  // Each entry takes at least 8 bytes: this bounds the reservation below.
  if (n_tensors > cur.left() / 8) damaged(f.path, "it claims " + std::to_string(n_tensors) + " tensors");
  std::vector<StateTensorInfo> tensors;
  tensors.resize(size_t(n_tensors));
  uint64_t total = 0;
  for (auto& t : tensors) {
    const uint32_t name_len = cur.u32();
    if (name_len > kMaxNameSize) damaged(f.path, "a tensor name of " + std::to_string(name_len) + " bytes");
    t.name = cur.bytes(name_len);
    const uint32_t ndim = cur.u32();
    if (ndim > kMaxDims) damaged(f.path, "tensor '" + t.name + "' has " + std::to_string(ndim) + " dimensions");
    uint64_t numel = 1;
    for (uint32_t i = 0; i < ndim; ++i) {
      const uint64_t d = cur.u64();
      if (d > n_floats || (d && numel > n_floats / d)) damaged(f.path, "tensor '" + t.name + "' is too large");
      numel *= d;
      t.shape.push_back(int64_t(d));
    }
    total += numel;
    if (total > n_floats) break;
  }
  if (total != n_floats)
    damaged(f.path, "its tensors hold " + std::to_string(total) + " floats, the header says " +
                          std::to_string(n_floats));
  return tensors;
}

ParsedFile parse(const StateBytes& f) {
  ParsedFile p;
  const std::string& path = f.path;
  check_integrity(f);
  const uint8_t* d = f.data;
  const uint64_t size = f.size;
  StateFileInfo& info = p.info;
  info.path = path;
  info.file_size = size;
  info.format_version = load_le32(d + kOffVersion);
  info.crc32 = load_le32(d + size - kTrailerSize);
  if (const uint32_t dtype = load_le32(d + kOffDType); dtype != kDTypeF32)
    throw error_in(path, "unsupported element type code " + std::to_string(dtype) +
                             " (this Aviary reads float32 states only)");
  info.dtype = "f32";
  info.arch_generation = int(load_le32(d + kOffArch));
  if (info.arch_generation < 4 || info.arch_generation > 7)
    damaged(path, "unknown architecture RWKV-" + std::to_string(info.arch_generation));
  const char* v = reinterpret_cast<const char*>(d + kOffVersionName);
  info.version.assign(v, strnlen(v, kVersionFieldSize));
  int64_t* dims[] = {&info.n_layer, &info.n_embd, &info.n_head, &info.head_size, &info.vocab_size};
  for (size_t i = 0; i < 5; ++i) *dims[i] = int64_t(load_le64(d + kOffDims + 8 * i));
  const uint64_t n_tensors = load_le64(d + kOffNTensors);
  info.n_floats = load_le64(d + kOffNFloats);
  info.fingerprint = fingerprint_hex(load_le64(d + kOffFingerprint));
  info.extras.token_count = int64_t(load_le64(d + kOffTokenCount));
  const uint64_t n_tokens = load_le64(d + kOffNTokens), text_bytes = load_le64(d + kOffTextBytes);

  // Every length must fit in the file before any of them is used.
  p.data_offset = load_le64(d + kOffDataOffset);
  if (p.data_offset < kFixedHeaderSize || p.data_offset > size - kTrailerSize || info.n_floats > size / 4 ||
      n_tokens > size / 4 || text_bytes > size ||
      p.data_offset + 4 * info.n_floats + 4 * n_tokens + text_bytes + kTrailerSize != size)
    damaged(path, "its length fields do not add up to its size of " + std::to_string(size) + " bytes");
  info.tensors = read_table(f, n_tensors, p.data_offset, info.n_floats);

  const uint8_t* extras = d + p.data_offset + 4 * info.n_floats;
  info.extras.tokens.resize(size_t(n_tokens));
  if (n_tokens) std::memcpy(info.extras.tokens.data(), extras, size_t(n_tokens) * 4);
  info.extras.text.assign(reinterpret_cast<const char*>(extras + 4 * n_tokens), size_t(text_bytes));
  return p;
}

// Everything that must agree between the file and the model, as
// "what: expected X (the model), found Y (the file)".
std::vector<std::string> differences(const StateFileInfo& info, const ModelConfig& c) {
  std::vector<std::string> out;
  auto check = [&](const char* what, const std::string& want, const std::string& got) {
    if (want != got) out.push_back(std::string(what) + ": expected " + want + ", found " + got);
  };
  check("architecture", "RWKV-" + std::to_string(arch_generation(c.arch)) + " (" + c.version + ")",
        "RWKV-" + std::to_string(info.arch_generation) + " (" + info.version + ")");
  const std::pair<const char*, std::pair<int64_t, int64_t>> dims[] = {
      {"n_layer", {c.n_layer, info.n_layer}},       {"n_embd", {c.n_embd, info.n_embd}},
      {"n_head", {c.n_head, info.n_head}},          {"head_size", {c.head_size, info.head_size}},
      {"vocab_size", {c.vocab_size, info.vocab_size}}};
  for (const auto& [name, v] : dims) check(name, std::to_string(v.first), std::to_string(v.second));
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : "; ") + i;
  return s;
}

void check_matches(const StateFileInfo& info, const Model& model, const State& state,
                   const StateLoadOptions& options) {
  const auto diffs = differences(info, model.config());
  if (!diffs.empty())
    throw error_in(info.path, "state is for another model than " + model.checkpoint().path() + " (" + join(diffs) +
                                  ")");
  const auto& layout = state.layout();
  bool same = layout.size() == info.tensors.size();
  for (size_t i = 0; same && i < layout.size(); ++i)
    same = layout[i].name == info.tensors[i].name && layout[i].shape == info.tensors[i].shape;
  if (!same || info.n_floats != state.raw().size())
    throw error_in(info.path, "state tensors differ from the layout of " + model.checkpoint().path() + " (" +
                                  std::to_string(info.tensors.size()) + " tensors of " +
                                  std::to_string(info.n_floats) + " floats, expected " +
                                  std::to_string(layout.size()) + " of " + std::to_string(state.raw().size()) + ")");
  const std::string fp = model_fingerprint(model);
  if (info.fingerprint != fp && !options.allow_other_weights)
    throw error_in(info.path, "state was computed with other weights: weights fingerprint expected " + fp + " (" +
                                  model.checkpoint().path() + "), found " + info.fingerprint +
                                  "; the shapes match, so it can be loaded anyway with --allow-other-weights");
}

// Checks that `state` can be saved for `model` (errors name `where`), then
// hands the encoded bytes, in order, to `write`.
template <class Write>
void encode_state(const std::string& where, const Model& model, const State& state, const StateExtras& extras,
                  Write&& write) {
  if (!state.same_layout(model.new_state()))
    throw error_in(where, "cannot save: the state does not have the layout of " + model.checkpoint().path());
  if (extras.token_count < -1) throw error_in(where, "cannot save: negative token count");
  const std::string header = encode_header(model, state, extras);
  const auto raw = state.raw();
  uint32_t crc = 0;
  auto put = [&](const void* data, size_t size) {
    crc = crc_update(crc, data, size);
    write(data, size);
  };
  put(header.data(), header.size());
  put(raw.data(), raw.size() * sizeof(float));
  put(extras.tokens.data(), extras.tokens.size() * sizeof(int32_t));
  put(extras.text.data(), extras.text.size());
  std::string trailer;
  append_le32(trailer, crc);
  write(trailer.data(), trailer.size());
}

State decode_state(const StateBytes& bytes, const Model& model, const StateLoadOptions& options,
                   StateExtras* extras) {
  const ParsedFile p = parse(bytes);
  State state = model.new_state();
  check_matches(p.info, model, state, options);
  std::memcpy(state.raw().data(), bytes.data + p.data_offset, state.raw().size() * sizeof(float));
  if (extras) *extras = p.info.extras;
  return state;
}

StateBytes bytes_of(const MappedFile& f) { return {f.data(), f.size(), f.path()}; }

}  // namespace

bool is_state_file(const std::string& path) {
  const auto f = MappedFile::open(path);
  return f->size() >= sizeof kMagic && std::memcmp(f->data(), kMagic, sizeof kMagic) == 0;
}

void save_state_file(const std::string& path, const Model& model, const State& state, const StateExtras& extras) {
  // Checked before the temporary file exists, so a refusal leaves nothing behind.
  std::optional<AtomicFile> out;
  encode_state(path, model, state, extras, [&](const void* data, size_t size) {
    if (!out) out.emplace(path);
    out->write(data, size);
  });
  out->commit();
}

std::string serialize_state_file(const Model& model, const State& state, const StateExtras& extras) {
  std::string bytes;
  bytes.reserve(state.raw().size() * sizeof(float) + 4096);
  encode_state("state", model, state, extras,
               [&](const void* data, size_t size) { bytes.append(static_cast<const char*>(data), size); });
  return bytes;
}

StateFileInfo read_state_file_info(const std::string& path) {
  const auto file = MappedFile::open(path);
  return parse(bytes_of(*file)).info;
}

State load_state_file(const std::string& path, const Model& model, const StateLoadOptions& options,
                      StateExtras* extras) {
  const auto file = MappedFile::open(path);
  return decode_state(bytes_of(*file), model, options, extras);
}

State parse_state_file(std::string_view bytes, const Model& model, const std::string& source,
                       const StateLoadOptions& options, StateExtras* extras) {
  const StateBytes view{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), source};
  return decode_state(view, model, options, extras);
}

}  // namespace aviary
