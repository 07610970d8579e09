// aviary forward: raw logits (and states) in the official layouts, for
// comparing with the official implementation.
#include <cstdio>

#include "cli/commands.h"
#include "model/model.h"
#include "model/state_tune.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

Action add_forward(CLI::App& app) {
  struct Opts {
    std::string model, tokens, logits_out, mode = "seq", state_in, state_out, state_file;
    bool allow_other_weights = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "checkpoint (.pth, .safetensors or GGUF)")->required();
  add_threads_flag(app);
  app.add_option("--tokens", o->tokens, "token ids, e.g. 0,510,3158")->required();
  app.add_option("--logits-out", o->logits_out, "write the logits of every position here, raw float32 [T, V]")
      ->required();
  app.add_option("--mode", o->mode, "seq: the whole sequence at once; rnn: one token at a time")
      ->check(CLI::IsMember({"seq", "rnn"}));
  auto* raw_in = app.add_option("--state-in-f32", o->state_in, "start from this state (raw float32, official layout)");
  app.add_option("--state", o->state_file, "start from this initial state: an Aviary state file or a state-tune .pth/.safetensors")
      ->excludes(raw_in);
  app.add_flag("--allow-other-weights", o->allow_other_weights,
               "accept a --state file computed with other weights of the same shape");
  app.add_option("--state-out-f32", o->state_out, "write the final state here (raw float32, official layout)");
  return [=] {
    const std::vector<int32_t> tokens = parse_id_list(o->tokens, "--tokens");
    if (tokens.empty()) throw Error("--tokens: no token ids given");
    const auto model = load_model(o->model);
    State state = model->new_state();
    if (!o->state_in.empty()) state.load_raw_file(o->state_in);
    if (!o->state_file.empty()) state = load_initial_state(o->state_file, *model, {o->allow_other_weights});

    std::vector<float> logits;
    if (o->mode == "seq") {
      model->forward(tokens, state, logits, /*all_positions=*/true);
    } else {
      const size_t V = size_t(model->config().vocab_size);
      std::vector<float> step;
      logits.reserve(tokens.size() * V);
      for (int32_t t : tokens) {
        model->forward({&t, 1}, state, step);
        logits.insert(logits.end(), step.begin(), step.end());
      }
    }
    write_f32_file(o->logits_out, logits);
    if (!o->state_out.empty()) state.save_raw_file(o->state_out);
    std::fprintf(stderr, "%zu tokens, %s mode: wrote [%zu, %lld] logits to %s\n", tokens.size(),
                 o->mode.c_str(), tokens.size(), (long long)model->config().vocab_size, o->logits_out.c_str());
    return 0;
  };
}

}  // namespace aviary::cli
