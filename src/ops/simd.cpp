// Target selection for the Highway kernels. Compiled once per target only to
// report which one is active.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace aviary::ops::HWY_NAMESPACE {
int64_t ThisTarget() { return HWY_TARGET; }
}  // namespace aviary::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "ops/simd.h"
#include "util/error.h"

namespace aviary::ops {

HWY_EXPORT(ThisTarget);

namespace {

constexpr std::string_view kReference = "reference";

std::atomic<bool> g_reference{false};

std::string target_name(int64_t target) {
  std::string s = hwy::TargetName(target);
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Compiled targets this CPU runs, read before anything restricts them.
int64_t available_targets() {
  static const int64_t available = hwy::SupportedTargets() & HWY_TARGETS;
  return available;
}

// Selects `name`; false when it is not available (nothing changes then).
bool select(std::string_view name) {
  int64_t target = 0;  // 0: every available target, so the best is chosen
  if (name != kReference && !name.empty() && name != "auto") {
    for (int64_t t = available_targets(); t != 0; t &= t - 1)
      if (target_name(t & -t) == name) target = t & -t;
    if (target == 0) return false;
  }
  hwy::DisableTargets(target != 0 ? ~target : 0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  g_reference.store(name == kReference, std::memory_order_relaxed);
  return true;
}

std::string joined_names() {
  std::string all;
  for (const std::string& n : simd_targets()) all += (all.empty() ? "" : ", ") + n;
  return all;
}

bool init_from_environment() {
  available_targets();
  // Choose now, so that no dispatch table's first-call trampoline runs later
  // on several threads at once.
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  const char* env = std::getenv("AVIARY_SIMD");
  if (env != nullptr && !select(env))
    std::fprintf(stderr, "aviary: warning: AVIARY_SIMD=%s is not available here (available: %s); using the best\n",
                 env, joined_names().c_str());
  return true;
}

void init() { static const bool done = init_from_environment(); (void)done; }

}  // namespace

bool detail::use_reference() {
  init();
  return g_reference.load(std::memory_order_relaxed);
}

std::string simd_target() {
  if (detail::use_reference()) return std::string(kReference);
  return target_name(HWY_DYNAMIC_DISPATCH(ThisTarget)());
}

std::vector<std::string> simd_targets() {
  std::vector<std::string> names;
  for (int64_t t = available_targets(); t != 0; t &= t - 1) names.push_back(target_name(t & -t));
  names.emplace_back(kReference);
  return names;
}

void set_simd_target(std::string_view name) {
  init();
  if (!select(name))
    throw Error("unknown SIMD variant '" + std::string(name) + "' (available: " + joined_names() + ")");
}

}  // namespace aviary::ops

#endif  // HWY_ONCE
