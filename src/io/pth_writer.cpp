// write_pth: the pickle and record layout of torch 1.13's torch.save(dict).
// The pickle mirrors Python's pickler opcode for opcode (memo numbering
// included), so a file written from the tensors of a torch.save file is
// byte-identical to it; the tests check that against the refdata files.
#include <algorithm>
#include <map>

#include "io/checkpoint_writer.h"
#include "io/le_bytes.h"

namespace aviary {
namespace {

const char* storage_class(DType t) {
  switch (t) {
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_K: case DType::Q4_1: case DType::Q5_0:
    case DType::Q5_1: case DType::Q5_K: case DType::Q6_K:
      break;  // torch has no block-quantized storage; callers refuse these earlier
  }
  return "?";
}

// torch's contiguous strides treat a zero-sized dimension as size 1.
std::vector<int64_t> torch_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

// Emits protocol-2 opcodes the way Python's pickle.Pickler does for the
// objects torch.save produces.
class TorchPickler {
 public:
  TorchPickler() { out_ = "\x80\x02"; }  // PROTO 2

  void begin_dict() {
    out_ += '}';  // EMPTY_DICT
    memoize();
  }
  // Python batches dict items 1000 at a time: MARK ... SETITEMS, or SETITEM for one.
  void begin_batch() { out_ += '('; }
  void end_batch(size_t n) { out_ += n == 1 ? 's' : 'u'; }
  std::string finish() { return out_ + '.'; }

  void tensor(const TensorData& t, const std::string& key) {
    text(t.name);
    shared("c", "torch._utils\n_rebuild_tensor_v2\n");
    out_ += '(';
    persistent_id(t, key);
    integer(0);  // storage offset
    int_tuple(t.shape);
    int_tuple(torch_strides(t.shape));
    out_ += '\x89';                             // NEWFALSE: requires_grad
    shared("c", "collections\nOrderedDict\n");  // backward hooks: OrderedDict()
    out_ += ")R";
    memoize();
    out_ += 't';  // the 6 arguments
    memoize();
    out_ += 'R';
    memoize();
  }

 private:
  void memoize() {
    if (next_ < 256) {
      out_ += 'q';
      out_ += char(next_);
    } else {
      out_ += 'r';
      append_le32(out_, next_);
    }
    ++next_;
  }
  // An object saved once and fetched from the memo (BINGET) afterwards, as
  // the same Python object is: globals, 'storage', 'cpu'.
  void shared(const char* opcode, const std::string& payload) {
    const std::string key = opcode + payload;
    if (const auto it = memo_.find(key); it != memo_.end()) {
      if (it->second < 256) {
        out_ += 'h';
        out_ += char(it->second);
      } else {
        out_ += 'j';
        append_le32(out_, it->second);
      }
      return;
    }
    memo_[key] = next_;
    out_ += opcode == std::string("X") ? unicode_op(payload) : "c" + payload;
    memoize();
  }
  static std::string unicode_op(const std::string& s) {
    std::string op = "X";
    append_le32(op, uint32_t(s.size()));
    return op + s;
  }
  void text(const std::string& s) {
    out_ += unicode_op(s);
    memoize();
  }
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      out_ += 'K';
      out_ += char(v);
    } else if (v >= 0 && v <= 0xffff) {
      out_ += 'M';
      append_le16(out_, uint16_t(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      append_le32(out_, uint32_t(int32_t(v)));
    } else {  // LONG1: shortest little-endian two's complement (v > 0 here)
      std::string bytes;
      for (uint64_t u = uint64_t(v); u != 0; u >>= 8) bytes += char(u & 0xff);
      if (uint8_t(bytes.back()) & 0x80) bytes += '\0';
      out_ += '\x8a';
      out_ += char(bytes.size());
      out_ += bytes;
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) {
      out_ += ')';  // the empty tuple is a singleton Python never memoizes
      return;
    }
    if (v.size() > 3) out_ += '(';
    for (int64_t x : v) integer(x);
    out_ += v.size() == 1 ? "\x85" : v.size() == 2 ? "\x86" : v.size() == 3 ? "\x87" : "t";
    memoize();
  }
  // ('storage', torch.<Type>Storage, key, 'cpu', numel), then BINPERSID.
  void persistent_id(const TensorData& t, const std::string& key) {
    out_ += '(';
    shared("X", "storage");
    shared("c", std::string("torch\n") + storage_class(t.dtype) + "\n");
    text(key);
    shared("X", "cpu");
    integer(int64_t(t.bytes.size() / dtype_size(t.dtype)));
    out_ += 't';
    memoize();
    out_ += 'Q';
  }

  std::string out_;
  uint32_t next_ = 0;
  std::map<std::string, uint32_t> memo_;
};

std::string torch_pickle(const std::vector<TensorData>& tensors) {
  constexpr size_t kBatch = 1000;
  TorchPickler p;
  p.begin_dict();
  for (size_t start = 0; start < tensors.size(); start += kBatch) {
    const size_t n = std::min(kBatch, tensors.size() - start);
    if (n > 1) p.begin_batch();
    for (size_t i = start; i < start + n; ++i) p.tensor(tensors[i], std::to_string(i));
    p.end_batch(n);
  }
  return p.finish();
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

void write_pth(const std::string& path, const std::vector<TensorData>& tensors,
               const PthWriteOptions& options) {
  check_tensor_data(path, tensors);
  const std::string root = options.archive_name;
  const std::string pickle = torch_pickle(tensors);
  static const std::string version = "3\n";

  // torch writes the storages sorted by key as strings: 0, 1, 10, 11, ..., 2, ...
  std::vector<std::string> keys;
  for (size_t i = 0; i < tensors.size(); ++i) keys.push_back(std::to_string(i));
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });

  std::vector<ZipRecord> records{{root + "/data.pkl", as_bytes(pickle)}};
  for (size_t i : order) records.push_back({root + "/data/" + keys[i], tensors[i].bytes});
  records.push_back({root + "/version", as_bytes(version)});
  write_torch_zip(path, records, options.zip64_threshold);
}

}  // namespace aviary
