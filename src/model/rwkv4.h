// RWKV-4 (Raven, Pile, World, Novel), as the official `rwkv` pip package computes it.
#pragma once

#include <memory>

#include "model/model.h"

namespace aviary {

std::unique_ptr<Model> make_rwkv4(Checkpoint ckpt, ModelConfig config);

}  // namespace aviary
