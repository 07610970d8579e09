// RWKV-7 "Goose" (x070), as the official `rwkv` pip package computes it.
#pragma once

#include <memory>

#include "io/checkpoint.h"
#include "model/config.h"
#include "model/model.h"

namespace aviary {

std::unique_ptr<Model> make_rwkv7(Checkpoint ckpt, ModelConfig config);

}  // namespace aviary
