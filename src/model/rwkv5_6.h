// RWKV-5.2 "Eagle" (x052) and RWKV-6 "Finch" (x060), as the official `rwkv`
// pip package computes them. They share the multi-head WKV with a per-channel
// bonus and a gated output; RWKV-6 adds data-dependent token shift and decay.
#pragma once

#include <memory>

#include "model/model.h"

namespace aviary {

std::unique_ptr<Model> make_rwkv5_6(Checkpoint ckpt, ModelConfig config);

}  // namespace aviary
