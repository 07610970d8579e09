// Keeps fp32 activations for bf16 weights for a scope: the AVX512-BF16
// products (ops/bf16_dot.h) round them to bf16, so the tests that hold bf16
// or f16 checkpoints to the official fp32 numbers at fp32 tolerance turn them
// off, in this process and (AVIARY_BF16_DOT=0) in the `aviary` processes they
// start. The refdata suite covers the bf16 path at the bf16 tolerance.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

#include "ops/bf16_dot.h"

namespace aviary::test {

class Fp32Activations {
 public:
  Fp32Activations() : was_enabled_(ops::bf16dot::enabled()) {
    if (const char* v = std::getenv(kVar)) env_was_ = v;
    ops::bf16dot::set_enabled(false);
    setenv(kVar, "0", 1);
  }
  ~Fp32Activations() {
    ops::bf16dot::set_enabled(was_enabled_);
    if (env_was_) setenv(kVar, env_was_->c_str(), 1);
    else unsetenv(kVar);
  }
  Fp32Activations(const Fp32Activations&) = delete;
  Fp32Activations& operator=(const Fp32Activations&) = delete;

 private:
  static constexpr const char* kVar = "AVIARY_BF16_DOT";
  bool was_enabled_;
  std::optional<std::string> env_was_;
};

}  // namespace aviary::test
