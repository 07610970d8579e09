// The on/off state of a kernel family that runs only where the CPU has its
// instructions (AVX512-VNNI, AVX512-BF16) and that an environment variable
// (NAME=0) or a call can turn off, for comparisons, tests and bug reports.
#pragma once

#include <atomic>
#include <cstdlib>
#include <string_view>

namespace aviary::ops {

class FeatureSwitch {
 public:
  // cpu_has: whether this CPU runs the family; env: the variable whose value
  // "0" turns it off at start.
  FeatureSwitch(bool cpu_has, const char* env) : cpu_has_(cpu_has), on_(cpu_has && !turned_off_by(env)) {}

  bool enabled() const { return on_.load(std::memory_order_relaxed); }

  // On only where the CPU has the instructions.
  void set_enabled(bool on) { on_.store(on && cpu_has_, std::memory_order_relaxed); }

 private:
  static bool turned_off_by(const char* env) {
    const char* v = std::getenv(env);
    return v && std::string_view(v) == "0";
  }

  const bool cpu_has_;
  std::atomic<bool> on_;
};

}  // namespace aviary::ops
