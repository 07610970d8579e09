#include "io/pickle_reader.h"

#include <cstdio>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "io/pickle_opcodes.h"
#include "util/error.h"

namespace aviary {
namespace {

enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
  constexpr const char* names[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                   "list", "dict", "global", "storage", "tensor"};
  return names[int(k)];
}

// Values live in an arena owned by the machine and refer to each other by
// raw pointer, so a hostile pickle can build cycles or deep nesting without
// leaking or recursing on destruction.
struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;              // Bool, Int; Storage/Tensor: index into the machine's tables
  std::string s;              // Str; Global: "module.name"
  std::vector<Value*> items;  // Tuple, List; Dict: key, value, key, value, ...
};

// A quoted, length-limited rendering of untrusted text for error messages.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (size_t k = 0; k < text.size() && k < 80; ++k) {
    const unsigned char ch = text[k];
    if (ch >= 0x20 && ch < 0x7f) {
      out += char(ch);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    }
  }
  return out + (text.size() > 80 ? "...'" : "'");
}

std::optional<DType> storage_dtype(std::string_view global) {
  if (global == "torch.FloatStorage") return DType::F32;
  if (global == "torch.HalfStorage") return DType::F16;
  if (global == "torch.BFloat16Storage") return DType::BF16;
  return std::nullopt;
}

class Machine {
 public:
  Machine(std::span<const uint8_t> in, const std::string& context) : in_(in), ctx_(context) {}

  std::vector<PickledTensor> run() {
    while (pos_ < in_.size()) {
      op_pos_ = pos_;
      if (!step(in_[pos_++])) return collect(pop());
    }
    fail_plain("truncated pickle: no STOP opcode before the end (" + std::to_string(in_.size()) +
               " bytes)");
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(ctx_ + ": " + msg + " at byte " + std::to_string(op_pos_));
  }
  [[noreturn]] void fail_plain(const std::string& msg) const { throw Error(ctx_ + ": " + msg); }

  // --- input: every length is checked against the bytes that remain ---
  std::string_view take(uint64_t n) {
    if (n > in_.size() - pos_)
      fail("truncated pickle: " + std::string(pickle_opcode_name(in_[op_pos_])) + " needs " +
           std::to_string(n) + " bytes but only " + std::to_string(in_.size() - pos_) + " remain");
    const auto* p = reinterpret_cast<const char*>(in_.data() + pos_);
    pos_ += size_t(n);
    return {p, size_t(n)};
  }
  uint64_t read_uint(size_t n) {
    const auto* p = reinterpret_cast<const uint8_t*>(take(n).data());
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | p[k];
    return v;
  }
  std::string_view line() {
    const size_t start = pos_;
    while (pos_ < in_.size() && in_[pos_] != '\n') ++pos_;
    if (pos_ == in_.size()) fail("truncated pickle: unterminated GLOBAL");
    return {reinterpret_cast<const char*>(in_.data() + start), pos_++ - start};
  }

  // --- the stack; MARK positions fence off what an opcode may pop ---
  Value* make(Kind k, int64_t i = 0) {
    Value& v = arena_.emplace_back();
    v.kind = k;
    v.i = i;
    return &v;
  }
  void push(Value* v) { stack_.push_back(v); }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* top() {
    if (stack_.size() <= floor())
      fail(std::string(pickle_opcode_name(in_[op_pos_])) + " on an empty stack");
    return stack_.back();
  }
  Value* pop() {
    Value* v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail(std::string(pickle_opcode_name(in_[op_pos_])) + " without a MARK");
    std::vector<Value*> items(stack_.begin() + long(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Value* expect(Value* v, Kind k, const char* what) {
    if (v->kind != k)
      fail(std::string(what) + " must be a " + kind_name(k) + ", found " + kind_name(v->kind));
    return v;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Value* str(std::string_view text) {
    Value* v = make(Kind::Str);
    v->s.assign(text);
    return v;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value* memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }

  bool step(uint8_t op);
  void op_proto();
  void op_frame();
  void op_long1();
  void op_small_tuple(size_t n);
  void op_from_mark(Kind kind);
  void op_add(Kind kind, size_t n);
  void add_items(Kind kind, const std::vector<Value*>& items);
  [[noreturn]] void unsupported(uint8_t op) const;
  void op_global();
  void op_stack_global();
  void check_global(std::string_view module, std::string_view name);
  void op_reduce();
  void op_persid();
  Value* rebuild_tensor(const std::vector<Value*>& args);
  int64_t as_int(Value* v, const char* what) { return expect(v, Kind::Int, what)->i; }
  std::vector<int64_t> as_ints(Value* v, const char* what);
  std::vector<PickledTensor> collect(Value* root);

  std::span<const uint8_t> in_;
  std::string ctx_;
  size_t pos_ = 0, op_pos_ = 0;
  std::deque<Value> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::vector<PickledStorage> storages_;
  std::vector<PickledTensor> tensors_;
};

// One opcode; returns false at STOP.
bool Machine::step(uint8_t op) {
  switch (op) {
    case 0x80: op_proto(); break;
    case 0x95: op_frame(); break;
    case '.': return false;
    case '(': marks_.push_back(stack_.size()); break;
    case '0': pop(); break;
    case '1': pop_mark(); break;
    case '2': push(top()); break;
    case 'N': push(make(Kind::None)); break;
    case 0x88: push(make(Kind::Bool, 1)); break;
    case 0x89: push(make(Kind::Bool, 0)); break;
    case 'K': push(make(Kind::Int, int64_t(read_uint(1)))); break;
    case 'M': push(make(Kind::Int, int64_t(read_uint(2)))); break;
    case 'J': push(make(Kind::Int, int32_t(uint32_t(read_uint(4))))); break;
    case 0x8a: op_long1(); break;
    case 'G': take(8), push(make(Kind::Float)); break;  // value not needed
    case 'X': push(str(take(read_uint(4)))); break;
    case 0x8c: push(str(take(read_uint(1)))); break;
    case 0x8d: push(str(take(read_uint(8)))); break;
    case '}': push(make(Kind::Dict)); break;
    case ']': push(make(Kind::List)); break;
    case ')': push(tuple({})); break;
    case 't': push(tuple(pop_mark())); break;
    case 0x85: op_small_tuple(1); break;
    case 0x86: op_small_tuple(2); break;
    case 0x87: op_small_tuple(3); break;
    case 'l': op_from_mark(Kind::List); break;
    case 'd': op_from_mark(Kind::Dict); break;
    case 'a': op_add(Kind::List, 1); break;
    case 's': op_add(Kind::Dict, 2); break;
    case 'e': add_items(Kind::List, pop_mark()); break;
    case 'u': add_items(Kind::Dict, pop_mark()); break;
    case 'b': pop(), expect(top(), Kind::Dict, "BUILD target"); break;  // OrderedDict state
    case 'q': memo_put(read_uint(1)); break;
    case 'r': memo_put(read_uint(4)); break;
    case 0x94: memo_put(memo_.size()); break;
    case 'h': push(memo_get(read_uint(1))); break;
    case 'j': push(memo_get(read_uint(4))); break;
    case 'c': op_global(); break;
    case 0x93: op_stack_global(); break;
    case 'Q': op_persid(); break;
    case 'R': op_reduce(); break;
    default: unsupported(op);
  }
  return true;
}

void Machine::op_proto() {
  const uint64_t protocol = read_uint(1);
  if (protocol > 5) fail("unsupported pickle protocol " + std::to_string(protocol));
}

// Framing (protocol 4) only groups opcodes for buffered reading: skip it.
void Machine::op_frame() {
  if (read_uint(8) > in_.size() - pos_) fail("truncated pickle: FRAME longer than the data");
}

// LONG1: little-endian two's complement; more than 8 bytes cannot be a size.
void Machine::op_long1() {
  const size_t n = size_t(read_uint(1));
  if (n > 8) fail("LONG1 integer of " + std::to_string(n) + " bytes is too large");
  uint64_t v = read_uint(n);
  if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
  push(make(Kind::Int, int64_t(v)));
}

void Machine::op_small_tuple(size_t n) {
  std::vector<Value*> items(n);
  for (size_t k = n; k-- > 0;) items[k] = pop();
  push(tuple(std::move(items)));
}

void Machine::op_from_mark(Kind kind) {
  std::vector<Value*> items = pop_mark();
  push(make(kind));
  add_items(kind, items);
}

void Machine::op_add(Kind kind, size_t n) {
  std::vector<Value*> items(n);
  for (size_t k = n; k-- > 0;) items[k] = pop();
  add_items(kind, items);
}

void Machine::unsupported(uint8_t op) const {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  fail(std::string("unsupported pickle opcode ") + pickle_opcode_name(op) + " (" + hex + ")");
}

void Machine::op_global() {
  const std::string_view module = line();
  check_global(module, line());
}

void Machine::op_stack_global() {
  const std::string name = expect(pop(), Kind::Str, "STACK_GLOBAL name")->s;
  check_global(expect(pop(), Kind::Str, "STACK_GLOBAL module")->s, name);
}

void Machine::check_global(std::string_view module, std::string_view name) {
  const std::string full = std::string(module) + "." + std::string(name);
  if (full == "collections.OrderedDict" || full == "torch._utils._rebuild_tensor_v2" ||
      full == "torch._utils._rebuild_parameter" || storage_dtype(full)) {
    push(make(Kind::Global));
    stack_.back()->s = full;
    return;
  }
  if (module == "torch" && name.ends_with("Storage"))
    fail("unsupported storage type " + quoted(full) +
         " (supported: torch.FloatStorage, torch.HalfStorage, torch.BFloat16Storage)");
  fail("forbidden global " + quoted(full) +
       " (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
       "torch._utils._rebuild_parameter and torch.{Float,Half,BFloat16}Storage are allowed)");
}

// ('storage', StorageType, key, location, numel) -> a storage reference.
void Machine::op_persid() {
  Value* pid = expect(pop(), Kind::Tuple, "persistent id");
  const auto& f = pid->items;
  if (f.size() != 5 || f[0]->kind != Kind::Str || f[0]->s != "storage")
    fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
  PickledStorage s;
  s.type_name = expect(f[1], Kind::Global, "storage type")->s;
  const auto dtype = storage_dtype(s.type_name);
  if (!dtype) fail("storage type " + quoted(s.type_name) + " is not a storage class");
  s.dtype = *dtype;
  s.key = expect(f[2], Kind::Str, "storage key")->s;
  s.location = expect(f[3], Kind::Str, "storage location")->s;
  s.numel = as_int(f[4], "storage size");
  if (s.numel < 0) fail("negative storage size " + std::to_string(s.numel));
  storages_.push_back(std::move(s));
  push(make(Kind::Storage, int64_t(storages_.size() - 1)));
}

void Machine::op_reduce() {
  Value* args = expect(pop(), Kind::Tuple, "REDUCE arguments");
  Value* fn = pop();
  if (fn->kind != Kind::Global)
    fail(std::string("REDUCE on a ") + kind_name(fn->kind) + ", not a function");
  if (fn->s == "collections.OrderedDict") {
    if (!args->items.empty()) fail("OrderedDict called with arguments");
    push(make(Kind::Dict));
  } else if (fn->s == "torch._utils._rebuild_tensor_v2") {
    push(rebuild_tensor(args->items));
  } else if (fn->s == "torch._utils._rebuild_parameter") {  // (tensor, requires_grad, hooks)
    if (args->items.size() != 3) fail("_rebuild_parameter takes 3 arguments");
    push(expect(args->items[0], Kind::Tensor, "_rebuild_parameter data"));
  } else {
    fail("cannot call " + quoted(fn->s));
  }
}

// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
Value* Machine::rebuild_tensor(const std::vector<Value*>& args) {
  if (args.size() != 6 && args.size() != 7)
    fail("_rebuild_tensor_v2 takes 6 or 7 arguments, found " + std::to_string(args.size()));
  PickledTensor t;
  t.storage = storages_[size_t(expect(args[0], Kind::Storage, "tensor storage")->i)];
  t.storage_offset = as_int(args[1], "storage offset");
  t.shape = as_ints(args[2], "tensor size");
  t.strides = as_ints(args[3], "tensor stride");
  if (t.shape.size() != t.strides.size())
    fail("tensor has " + std::to_string(t.shape.size()) + " sizes but " +
         std::to_string(t.strides.size()) + " strides");
  if (t.storage_offset < 0) fail("negative storage offset");
  for (size_t d = 0; d < t.shape.size(); ++d)
    if (t.shape[d] < 0 || t.strides[d] < 0) fail("negative tensor size or stride");
  tensors_.push_back(std::move(t));
  return make(Kind::Tensor, int64_t(tensors_.size() - 1));
}

std::vector<int64_t> Machine::as_ints(Value* v, const char* what) {
  std::vector<int64_t> out;
  for (Value* item : expect(v, Kind::Tuple, what)->items) out.push_back(as_int(item, what));
  return out;
}

// Adds to the container on top of the stack (dict items as key, value pairs).
void Machine::add_items(Kind kind, const std::vector<Value*>& items) {
  Value* target = top();
  if (target->kind != kind)
    fail(std::string(pickle_opcode_name(in_[op_pos_])) + " on a " + kind_name(target->kind) +
         ", expected a " + kind_name(kind));
  if (kind == Kind::Dict && items.size() % 2 != 0) fail("odd number of items for a dict");
  target->items.insert(target->items.end(), items.begin(), items.end());
}

std::vector<PickledTensor> Machine::collect(Value* root) {
  if (root->kind != Kind::Dict)
    fail_plain(std::string("top-level object is a ") + kind_name(root->kind) +
               ", expected a dict of name -> tensor");
  std::vector<PickledTensor> out;
  std::unordered_set<std::string> seen;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    Value* key = root->items[k];
    Value* value = root->items[k + 1];
    if (key->kind != Kind::Str)
      fail_plain(std::string("dict key is a ") + kind_name(key->kind) + ", not a str");
    if (value->kind != Kind::Tensor)
      fail_plain("entry " + quoted(key->s) + " is a " + kind_name(value->kind) + ", not a tensor");
    if (!seen.insert(key->s).second) fail_plain("duplicate tensor name " + quoted(key->s));
    out.push_back(tensors_[size_t(value->i)]);
    out.back().name = key->s;
  }
  return out;
}

}  // namespace

std::vector<PickledTensor> read_torch_pickle(std::span<const uint8_t> pickle,
                                             const std::string& context) {
  return Machine(pickle, context).run();
}

}  // namespace aviary
