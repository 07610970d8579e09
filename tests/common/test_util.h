// Helpers shared by every test binary: where the reference data is, how to
// read it, and how to run the `aviary` executable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace aviary::test {

// ../shared beside the checkout, or $AVIARY_SHARED when set.
std::filesystem::path shared_dir();
std::filesystem::path refdata_case(const std::string& name);  // shared/refdata/<name>
// Every model case in shared/refdata (a directory with a manifest.json), sorted.
std::vector<std::string> refdata_cases();
std::string case_model_path(const std::string& name);          // .../<name>/model.pth
std::vector<int32_t> case_tokens(const std::string& name);     // the manifest's token ids

// The message of the aviary::Error that `f` throws, or "(no error)".
std::string error_of(const std::function<void()>& f);
nlohmann::json read_json(const std::filesystem::path& path);
std::vector<float> read_floats(const std::filesystem::path& path);

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::filesystem::path& path, const std::string& bytes);
std::string read_bytes(const std::filesystem::path& path);

// "48656c" <-> "Hel": the reference vectors store bytes as hex.
std::string from_hex(const std::string& hex);
std::string to_hex(std::string_view bytes);

float max_abs_diff(const float* a, const float* b, size_t n);
inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() ? max_abs_diff(a.data(), b.data(), a.size()) : 1e30f;
}
size_t argmax(const float* v, size_t n);

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built `aviary` binary with the given arguments (no shell involved).
CliResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "");

}  // namespace aviary::test
