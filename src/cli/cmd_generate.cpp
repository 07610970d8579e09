// aviary generate: continue a prompt, streaming the text to stdout and the
// speeds to stderr.
#include <cstdio>
#include <random>

#include "cli/commands.h"
#include "model/generator.h"
#include "model/state_tune.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

namespace {

struct GenerateOpts {
  std::string model, vocab, prompt, prompt_file, ban, stop_tokens, state_file;
  std::vector<std::string> stop_strings;
  GenerationOptions gen;
  CLI::Option* seed = nullptr;
  bool echo = false;
  bool no_eot_stop = false;
  bool allow_other_weights = false;
};

void add_generation_flags(CLI::App& app, GenerateOpts& o) {
  o.seed = add_sampling_flags(app, o.gen.sampling, o.ban);
  app.add_option("--stop-token", o.stop_tokens, "token ids that end the generation");
  app.add_option("--stop", o.stop_strings, "a string that ends the generation (repeatable)");
}

}  // namespace

Action add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOpts>();
  app.add_option("-m,--model", o->model, "checkpoint (.pth or .safetensors)")->required();
  app.add_option("--vocab", o->vocab, "vocabulary: rwkv_vocab_v20230424.txt (World) or 20B_tokenizer.json (default: the one a GGUF model embeds, else found next to the model)");
  auto* p = app.add_option("-p,--prompt", o->prompt, "the prompt");
  app.add_option("-f,--prompt-file", o->prompt_file, "read the prompt from a file")->excludes(p);
  app.add_option("-n,--max-tokens", o->gen.max_tokens, "how many tokens to generate at most")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--echo", o->echo, "print the prompt before the continuation");
  app.add_flag("--ignore-eos", o->no_eot_stop, "keep going after the end-of-text token");
  app.add_option("--state", o->state_file, "start from this initial state: an Aviary state file or a state-tune .pth/.safetensors");
  app.add_flag("--allow-other-weights", o->allow_other_weights,
               "accept a --state file computed with other weights of the same shape");
  add_generation_flags(app, *o);
  return [=] {
    std::string prompt = o->prompt_file.empty() ? o->prompt : read_file(o->prompt_file);
    GenerationOptions gen = o->gen;
    gen.stop_strings = o->stop_strings;
    gen.stop_at_end_of_text = !o->no_eot_stop;
    gen.sampling.banned_tokens = parse_id_list(o->ban, "--ban");
    gen.sampling.stop_tokens = parse_id_list(o->stop_tokens, "--stop-token");

    const auto model = load_model(o->model);
    const auto tokenizer = model_tokenizer(o->vocab, o->model, *model);
    std::vector<int32_t> tokens = tokenizer->encode(prompt);
    // An empty prompt starts from end-of-text, the official document separator.
    if (tokens.empty()) tokens.push_back(kEndOfTextId);
    State state = o->state_file.empty() ? model->new_state()
                                        : load_initial_state(o->state_file, *model, {o->allow_other_weights});

    if (o->seed->count() == 0) gen.sampling.seed = std::random_device{}();
    if (o->echo) std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    const GenerationResult r = generate(*model, *tokenizer, state, tokens, gen, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const double n = double(r.tokens.size());
    std::fprintf(stderr, "\nseed: %llu\n", (unsigned long long)gen.sampling.seed);
    std::fprintf(stderr, "prompt: %lld tokens in %.3f s (%.1f tokens/s)\n", (long long)r.prompt_tokens,
                 r.prompt_seconds, r.prompt_seconds > 0 ? double(r.prompt_tokens) / r.prompt_seconds : 0.0);
    std::fprintf(stderr, "generation: %zu tokens in %.3f s (%.1f tokens/s), stopped by %s\n", r.tokens.size(),
                 r.generate_seconds, r.generate_seconds > 0 ? n / r.generate_seconds : 0.0,
                 stop_reason_name(r.stop));
    return 0;
  };
}

}  // namespace aviary::cli
