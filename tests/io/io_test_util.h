// Helpers shared by the io tests: the refdata checkpoints, expected-error
// checks, a tiny pickle builder, and reading/rewriting ZIP records to make
// damaged copies of a real checkpoint.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "io/zip_writer.h"
#include "util/error.h"

namespace aviary::test {

// The checkpoint used for the damaged-copy tests (small, bf16).
std::filesystem::path small_pth();

// Runs `fn`, expects aviary::Error, and returns its message after checking
// that it contains every one of `parts`.
std::string expect_error(const std::function<void()>& fn, std::initializer_list<std::string> parts);

// Opens `path` and expects an error naming the file and every one of `parts`.
std::string expect_open_error(const std::filesystem::path& path,
                              std::initializer_list<std::string> parts);

// A ZIP record with owned bytes.
struct OwnedRecord {
  std::string name;
  std::string bytes;
};
std::vector<OwnedRecord> read_records(const std::filesystem::path& pth);
void write_records(const std::filesystem::path& path, const std::vector<OwnedRecord>& records);
OwnedRecord& find_record(std::vector<OwnedRecord>& records, const std::string& suffix);

// Replaces the first occurrence of `from` (which must exist) by `to`.
std::string replace_once(std::string s, const std::string& from, const std::string& to);

// Builds pickles opcode by opcode.
struct Pickle {
  std::string bytes;
  Pickle& raw(const std::string& b) {
    bytes += b;
    return *this;
  }
  Pickle& op(char c) {
    bytes += c;
    return *this;
  }
  Pickle& proto(int n) {
    bytes += '\x80';
    bytes += char(n);
    return *this;
  }
  Pickle& str(const std::string& s);        // BINUNICODE
  Pickle& short_str(const std::string& s);  // SHORT_BINUNICODE
  Pickle& integer(int64_t v);               // BININT1/BININT2/BININT/LONG1
  Pickle& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  Pickle& ints(const std::vector<int64_t>& v);  // MARK ... TUPLE
  // ('storage', torch.<type>, key, 'cpu', numel) BINPERSID
  Pickle& storage(const std::string& type, const std::string& key, int64_t numel);
  // _rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& shape, const std::vector<int64_t>& strides);
  std::span<const uint8_t> span() const {
    return {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  }
};

}  // namespace aviary::test
