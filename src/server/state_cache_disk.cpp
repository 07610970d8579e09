#include "server/state_cache_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary {

namespace fs = std::filesystem;

namespace {

// Only our own entries count towards the budget and are ever deleted: the
// directory may hold other files (or temporaries of a write in progress).
bool is_entry_name(const std::string& name) {
  const size_t suffix = std::strlen(DiskStateStore::kSuffix);
  if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, DiskStateStore::kSuffix) != 0) return false;
  return std::all_of(name.begin(), name.end() - std::ptrdiff_t(suffix),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct EntryFile {
  fs::path path;
  uint64_t size;
  fs::file_time_type mtime;
};

std::vector<EntryFile> list_entries(const std::string& dir) {
  std::vector<EntryFile> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!is_entry_name(it->path().filename().string())) continue;
    std::error_code e1, e2;
    const uint64_t size = it->file_size(e1);
    const auto mtime = it->last_write_time(e2);
    if (!e1 && !e2) out.push_back({it->path(), size, mtime});  // else removed meanwhile
  }
  return out;
}

}  // namespace

DiskStateStore::DiskStateStore(std::string dir, size_t max_bytes, Warn warn)
    : dir_(std::move(dir)), max_bytes_(max_bytes), warn_(std::move(warn)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw error_in(dir_, "cannot create the state cache directory: " + ec.message());
  if (!fs::is_directory(dir_, ec)) throw error_in(dir_, "the state cache directory is not a directory");
  if (::access(dir_.c_str(), W_OK | X_OK) != 0)
    throw error_in(dir_, std::string("the state cache directory is not writable: ") + std::strerror(errno));
  bytes_ = scan_bytes();
}

uint64_t DiskStateStore::scan_bytes() const {
  uint64_t total = 0;
  for (const auto& e : list_entries(dir_)) total += e.size;
  return total;
}

bool DiskStateStore::contains(const std::string& key) const {
  struct stat st;
  return ::stat(path_of(key).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::optional<std::string> DiskStateStore::get(const std::string& key) {
  const std::string path = path_of(key);
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const Error&) {
    return std::nullopt;  // absent, or evicted between a check and this read
  }
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // now the most recently used
  return bytes;
}

void DiskStateStore::put(const std::string& key, std::string_view bytes) {
  const std::string path = path_of(key);
  std::lock_guard lock(write_mutex_);
  struct stat st;
  const uint64_t replaced = ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
  try {
    AtomicFile out(path);
    out.write(bytes);
    out.commit();
  } catch (const Error& e) {
    warn_(std::string("state cache: cannot write to the disk tier: ") + e.what());
    return;
  }
  bytes_ = bytes_ - std::min(bytes_, replaced) + bytes.size();
  if (max_bytes_ && bytes_ > max_bytes_) evict_to_budget();
}

void DiskStateStore::evict_to_budget() {
  // Rescanning makes the total exact again, whatever other processes sharing
  // the directory have written or deleted since the last scan.
  auto entries = list_entries(dir_);
  std::sort(entries.begin(), entries.end(), [](const EntryFile& a, const EntryFile& b) { return a.mtime < b.mtime; });
  uint64_t total = 0;
  for (const auto& e : entries) total += e.size;
  for (const auto& e : entries) {
    if (total <= max_bytes_) break;
    std::error_code ec;
    if (fs::remove(e.path, ec)) ++evictions_;
    total -= e.size;
  }
  bytes_ = total;
}

void DiskStateStore::remove(const std::string& key) {
  std::lock_guard lock(write_mutex_);
  struct stat st;
  const std::string path = path_of(key);
  if (::stat(path.c_str(), &st) == 0 && ::unlink(path.c_str()) == 0) bytes_ -= std::min(bytes_, uint64_t(st.st_size));
}

uint64_t DiskStateStore::evictions() const {
  std::lock_guard lock(write_mutex_);
  return evictions_;
}

}  // namespace aviary
