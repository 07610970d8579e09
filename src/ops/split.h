// How a product of T activation rows shares its output rows among threads.
#pragma once

#include <cstdint>

#include "util/thread_pool.h"

namespace aviary::ops {

// Decode (one row) streams the weights from memory, and two threads doing so
// seldom finish equal halves together: balanced pieces. Prefill computes, at
// an even pace, and pays a set-up per call (activation rows interleaved for
// the tile): one static block per thread.
inline Split split_for(int64_t T) { return T == 1 ? Split::Balanced : Split::Static; }

}  // namespace aviary::ops
