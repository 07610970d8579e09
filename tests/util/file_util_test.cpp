#include <gtest/gtest.h>

#include <filesystem>

#include "common/test_util.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/file_util.h"
#include "util/mapped_file.h"

namespace aviary {
namespace {

namespace fs = std::filesystem;

size_t files_in(const fs::path& dir) {
  return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicWrite, ReplacesTheFileAndLeavesNoTemporary) {
  test::TempDir tmp;
  const auto path = (tmp / "f.bin").string();
  write_file_atomic(path, "old", 3);
  write_file_atomic(path, "newer", 5);
  EXPECT_EQ(read_file(path), "newer");
  EXPECT_EQ(files_in(tmp.path()), 1u);
}

TEST(AtomicWrite, AnAbandonedWriteKeepsTheOldFile) {
  test::TempDir tmp;
  const auto path = (tmp / "f.bin").string();
  write_file_atomic(path, "good", 4);
  {
    AtomicFile f(path);
    f.write("half-written", 12);
    // destroyed without commit(), as when an error unwinds mid-save
  }
  EXPECT_EQ(read_file(path), "good");
  EXPECT_EQ(files_in(tmp.path()), 1u);
}

TEST(AtomicWrite, UnwritableDirectoryIsAClearError) {
  try {
    write_file_atomic("/nonexistent-dir/x.bin", "x", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.bin"), std::string::npos);
  }
}

TEST(ReadF32File, RejectsPartialFloats) {
  test::TempDir tmp;
  test::write_bytes(tmp / "f", std::string(6, '\0'));
  EXPECT_THROW(read_f32_file((tmp / "f").string()), Error);
  test::write_bytes(tmp / "g", std::string(8, '\0'));
  EXPECT_EQ(read_f32_file((tmp / "g").string()).size(), 2u);
}

TEST(MappedFile, MapsContentAndNamesMissingFiles) {
  test::TempDir tmp;
  test::write_bytes(tmp / "m", "abc");
  const auto m = MappedFile::open((tmp / "m").string());
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ(m->data()[2], 'c');
  try {
    MappedFile::open((tmp / "missing").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open(tmp.path().string()), Error);  // a directory
}

// Released pages leave the process but not the file: reading them again
// gives the same bytes. Ranges outside the mapping are ignored.
TEST(MappedFile, ReleasedPagesReadBackUnchanged) {
  test::TempDir tmp;
  std::string content(5 * 4096 + 123, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = char(i * 131 % 251);
  test::write_bytes(tmp / "r", content);
  const auto m = MappedFile::open((tmp / "r").string());
  long sum = 0;
  for (size_t i = 0; i < m->size(); ++i) sum += m->data()[i];  // make every page resident
  EXPECT_GT(sum, 0);
  m->release(m->data() + 100, m->size() - 200);
  m->release(m->data(), m->size());
  m->release(m->data() + m->size() - 10, 20);  // past the end: ignored
  const uint8_t outside = 0;
  m->release(&outside, 1);                      // not in the mapping: ignored
  ASSERT_EQ(m->size(), content.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), content);
}

}  // namespace
}  // namespace aviary
