// State-tuned initial states, as RWKV-PEFT and the official RWKV-LM trainer
// ship them: a .pth or .safetensors holding one `blocks.N.att.time_state`
// [H, N, N] per layer (bf16 or any stored type), trained so that a model
// starting from it behaves as if it had read a long, good prompt.
#pragma once

#include <string>

#include "io/checkpoint.h"
#include "model/model.h"
#include "model/state_file.h"

namespace aviary {

// The model's state with each layer's WKV matrices from `path` and the
// token-shift vectors zero (as the official loaders build it):
//  - RWKV-5.2 and RWKV-6: time_state is [h][value][key] (the trainers' kernel
//    layout) and the official pip loader transposes it into its [h][key][value]
//    state; so does this.
//  - RWKV-7: time_state is [h][value][key], which is already the official
//    x070 state layout: copied as is.
//  - RWKV-4 has no matrix state: refused.
// Throws aviary::Error naming the file and the missing layer, wrong shape or
// surplus layer.
State load_state_tune(const std::string& path, const Model& model);
State load_state_tune(const Checkpoint& ckpt, const Model& model);

// What `--state FILE` accepts: an Aviary state file or a state-tune
// checkpoint, told apart by content. `options` applies to state files (a
// state-tune file carries no fingerprint of the weights it was tuned on).
State load_initial_state(const std::string& path, const Model& model, const StateLoadOptions& options = {});

}  // namespace aviary
