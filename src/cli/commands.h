// The `aviary` subcommands. Each registers its options on the CLI11 app and
// returns the action to run once the command line has been parsed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "model/model.h"
#include "model/sampler.h"
#include "text/tokenizer.h"

namespace aviary::cli {

using Action = std::function<int()>;

Action add_info(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_detokenize(CLI::App& app);
Action add_forward(CLI::App& app);
Action add_generate(CLI::App& app);
Action add_chat(CLI::App& app);
Action add_state(CLI::App& app);
Action add_quantize(CLI::App& app);
Action add_serve(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_synth(CLI::App& app);

// The sampling flags that `generate` and `chat` share, bound to `params`
// (whose current values are shown as the defaults). Returns the --seed option,
// so the caller can tell whether a seed was given.
CLI::Option* add_sampling_flags(CLI::App& app, SamplerParams& params, std::string& ban);

// -t/--threads N: the kernels' thread count (default: physical cores), set
// as soon as the flag is parsed. add_sampling_flags adds it too.
void add_threads_flag(CLI::App& app);

// "33.00 KiB": a byte count for people.
std::string human_bytes(double bytes);

// "1,2,3" or "1 2 3" -> ids; a clear error names the bad item.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& what);

// The vocabulary to use: `given` if not empty, else the file next to the
// model that its vocabulary size calls for; an error says what was looked for.
std::string find_vocab(const std::string& given, const std::string& model_path, int64_t model_vocab);

// The tokenizer of `model` (loaded from model_path): `given` (--vocab) if not
// empty, else the World vocabulary a GGUF model embeds (as llama.cpp's
// converter writes it), else find_vocab's file; checked to fit the model
// (check_tokenizer_fits), errors naming where it came from.
std::unique_ptr<Tokenizer> model_tokenizer(const std::string& given, const std::string& model_path,
                                           const Model& model);

}  // namespace aviary::cli
