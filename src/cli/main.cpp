// `aviary`: one executable, one subcommand per tool.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Aviary: an engine for RWKV language models (RWKV-7 Goose and friends)", "aviary"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "aviary 0.1.0");

  std::vector<std::pair<CLI::App*, aviary::cli::Action>> commands;
  auto add = [&](aviary::cli::Action (*adder)(CLI::App&), const char* name, const char* help) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands.emplace_back(sub, adder(*sub));
  };
  add(aviary::cli::add_info, "info", "Show a checkpoint's architecture, dimensions and size");
  add(aviary::cli::add_tokenize, "tokenize", "Turn text into token ids");
  add(aviary::cli::add_detokenize, "detokenize", "Turn token ids back into text");
  add(aviary::cli::add_forward, "forward", "Run tokens through a model and write the raw logits");
  add(aviary::cli::add_generate, "generate", "Continue a prompt, streaming the text");
  add(aviary::cli::add_chat, "chat", "Chat with a model, keeping its state between turns");
  add(aviary::cli::add_state, "state", "Save, inspect and convert model states");
  add(aviary::cli::add_quantize, "quantize", "Write an RWKV-7 checkpoint as llama.cpp GGUF, quantizing its matrices");
  add(aviary::cli::add_serve, "serve", "Serve the model over an OpenAI-compatible HTTP API");
  add(aviary::cli::add_eval, "eval", "Measure perplexity, LAMBADA accuracy or the distance to a reference model");
  add(aviary::cli::add_bench, "bench", "Measure prompt and generation speed (llama-bench style) or memory bandwidth");
  add(aviary::cli::add_synth, "synth", "Write a random-weight RWKV-7 of an official size");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the message (or the help text)
    return rc == 0 ? 0 : 2;      // usage errors exit with 2, as getopt tools do
  }
  try {
    for (auto& [sub, action] : commands)
      if (sub->parsed()) return action();
  } catch (const aviary::Error& e) {
    std::fprintf(stderr, "aviary: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "aviary: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aviary: internal error: %s\n", e.what());
    return 70;
  }
  return 0;
}
