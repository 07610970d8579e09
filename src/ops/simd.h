// Run-time choice of the kernels' SIMD variant.
//
// The kernels in ops/ are compiled once per Highway target (SSE4, AVX2,
// AVX-512, ... on x86) and the best one this CPU runs is picked at run time.
// Every kernel also has a plain scalar implementation (ops/reference.h).
// Variant names: "reference" (those plain loops, single-threaded) or a
// Highway target in lower case: "scalar", "ssse3", "sse4", "avx2", "avx3", ...
//
// The environment variable AVIARY_SIMD=<name> forces a variant; it is read
// once, before the first kernel runs (an unavailable name prints a warning
// on stderr and the best variant is used).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace aviary::ops {

// The variant the kernels use now.
std::string simd_target();

// The variants available: the Highway targets this build compiled and this
// CPU runs, best first, then "reference".
std::vector<std::string> simd_targets();

// Forces a variant, one of simd_targets(); "" or "auto" restores the best.
// Throws aviary::Error for any other name. Call it only while no kernel runs
// (it changes process-wide state).
void set_simd_target(std::string_view name);

namespace detail {
// Whether the reference kernels are selected. The first call applies AVIARY_SIMD;
// every kernel entry point calls it before dispatching.
bool use_reference();
}  // namespace detail

}  // namespace aviary::ops
