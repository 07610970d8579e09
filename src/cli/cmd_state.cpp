// aviary state info|save|convert: Aviary state files (docs/state-format.md),
// state-tuned initial states and the official raw float32 layout.
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/generator.h"
#include "model/state_file.h"
#include "model/state_tune.h"
#include "text/utf8.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

namespace {

// One line of at most `max_chars` characters: newlines and tabs escaped, cut
// at a character boundary, invalid UTF-8 replaced.
std::string preview(const std::string& text, size_t max_chars = 100) {
  const std::string valid = utf8_replace_invalid(text);
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < valid.size(); ++i) {
    const unsigned char ch = static_cast<unsigned char>(valid[i]);
    if ((ch & 0xc0) != 0x80 && chars++ == max_chars) return out + "...";
    out += ch == '\n' ? "\\n" : ch == '\t' ? "\\t" : std::string(1, char(ch));
  }
  return out;
}

nlohmann::json describe(const StateFileInfo& i) {
  nlohmann::json j;
  j["file"] = i.path;
  j["file_size"] = i.file_size;
  j["format_version"] = i.format_version;
  j["architecture"] = "RWKV-" + std::to_string(i.arch_generation);
  j["version"] = i.version;
  j["n_layer"] = i.n_layer;
  j["n_embd"] = i.n_embd;
  j["n_head"] = i.n_head;
  j["head_size"] = i.head_size;
  j["vocab_size"] = i.vocab_size;
  j["dtype"] = i.dtype;
  j["n_tensors"] = i.tensors.size();
  j["state_floats"] = i.n_floats;
  j["state_bytes"] = i.n_floats * 4;
  j["weights_fingerprint"] = i.fingerprint;
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", i.crc32);
  j["crc32"] = crc;
  j["token_count"] = i.extras.token_count >= 0 ? nlohmann::json(i.extras.token_count) : nlohmann::json();
  j["tokens"] = i.extras.tokens;
  j["text"] = utf8_replace_invalid(i.extras.text);
  auto& tensors = j["tensors"] = nlohmann::json::array();
  for (const auto& t : i.tensors) tensors.push_back({{"name", t.name}, {"shape", t.shape}});
  return j;
}

void print_info(const StateFileInfo& i) {
  std::printf("file:        %s (%s, format version %u, CRC-32 %08x)\n", i.path.c_str(),
              human_bytes(double(i.file_size)).c_str(), i.format_version, i.crc32);
  std::printf("model:       RWKV-%d (%s), %lld layers, n_embd %lld", i.arch_generation, i.version.c_str(),
              (long long)i.n_layer, (long long)i.n_embd);
  if (i.n_head > 0) std::printf(", n_head %lld, head_size %lld", (long long)i.n_head, (long long)i.head_size);
  std::printf(", vocabulary %lld\n", (long long)i.vocab_size);
  std::printf("weights:     fingerprint %s\n", i.fingerprint.c_str());
  std::printf("state:       %zu tensors, %llu %s (%s)\n", i.tensors.size(), (unsigned long long)i.n_floats,
              i.dtype.c_str(), human_bytes(double(i.n_floats) * 4).c_str());
  const std::string count = i.extras.token_count >= 0 ? std::to_string(i.extras.token_count) : "unknown";
  std::printf("tokens:      %s seen, %zu stored\n", count.c_str(), i.extras.tokens.size());
  if (!i.extras.text.empty())
    std::printf("text:        \"%s\" (%zu bytes)\n", preview(i.extras.text).c_str(), i.extras.text.size());
}

Action add_info_command(CLI::App& app) {
  struct Opts {
    std::string file;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("file", o->file, "an Aviary state file")->required();
  app.add_flag("--json", o->json, "print the header, tensors and extras as one JSON object");
  return [=] {
    const StateFileInfo info = read_state_file_info(o->file);
    if (o->json) std::printf("%s\n", describe(info).dump().c_str());
    else print_info(info);
    return 0;
  };
}

Action add_save_command(CLI::App& app) {
  struct Opts {
    std::string model, vocab, prompt, prompt_file, out;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("-m,--model", o->model, "checkpoint (.pth or .safetensors)")->required();
  auto* p = app.add_option("-p,--prompt", o->prompt, "the text to run through the model");
  auto* f = app.add_option("-f,--prompt-file", o->prompt_file, "read the text from a file")->excludes(p);
  p->excludes(f);
  app.add_option("--vocab", o->vocab, "vocabulary (default: as for generate)");
  app.add_option("-o,--out", o->out, "the state file to write")->required();
  return [=] {
    if (o->prompt_file.empty() && o->prompt.empty()) throw Error("state save: give the text with -p or -f");
    StateExtras extras;
    extras.text = o->prompt_file.empty() ? o->prompt : read_file(o->prompt_file);
    const auto model = load_model(o->model);
    const auto tokenizer = model_tokenizer(o->vocab, o->model, *model);
    extras.tokens = tokenizer->encode(extras.text);
    if (extras.tokens.empty()) throw Error("state save: the text is empty, nothing to run");
    extras.token_count = int64_t(extras.tokens.size());
    State state = model->new_state();
    std::vector<float> logits;
    model->forward(extras.tokens, state, logits);
    save_state_file(o->out, *model, state, extras);
    std::fprintf(stderr, "%zu tokens: wrote the state (%s) to %s\n", extras.tokens.size(),
                 human_bytes(double(state.raw().size()) * 4).c_str(), o->out.c_str());
    return 0;
  };
}

// For --to aviary: a raw float32 file, unless it is a state-tune checkpoint.
State read_raw_or_tune(const std::string& path, const Model& model) {
  if (is_state_file(path)) throw error_in(path, "already an Aviary state file");
  std::optional<Checkpoint> ckpt;
  try {
    ckpt.emplace(Checkpoint::open(path));
  } catch (const Error&) {  // not a checkpoint: raw float32
    State state = model.new_state();
    state.load_raw_file(path);
    return state;
  }
  return load_state_tune(*ckpt, model);
}

Action add_convert_command(CLI::App& app) {
  struct Opts {
    std::string model, in, out, to;
    bool allow_other_weights = false;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("in", o->in, "--to raw: an Aviary state file or a state-tune .pth/.safetensors; "
                              "--to aviary: a raw float32 state (official layout) or a state-tune file")
      ->required();
  app.add_option("out", o->out, "the file to write")->required();
  app.add_option("-m,--model", o->model, "the model the state belongs to")->required();
  app.add_option("--to", o->to, "raw: float32 in the official layout (forward --state-in-f32); aviary: a state file")
      ->required()->check(CLI::IsMember({"raw", "aviary"}));
  app.add_flag("--allow-other-weights", o->allow_other_weights,
               "accept a state file computed with other weights of the same shape");
  return [=] {
    const auto model = load_model(o->model);
    if (o->to == "raw") {
      load_initial_state(o->in, *model, {o->allow_other_weights}).save_raw_file(o->out);
    } else {
      save_state_file(o->out, *model, read_raw_or_tune(o->in, *model));
    }
    std::fprintf(stderr, "wrote %s (%s)\n", o->out.c_str(), o->to.c_str());
    return 0;
  };
}

}  // namespace

Action add_state(CLI::App& app) {
  app.require_subcommand(1);
  auto subs = std::make_shared<std::vector<std::pair<CLI::App*, Action>>>();
  auto add = [&](Action (*adder)(CLI::App&), const char* name, const char* help) {
    CLI::App* sub = app.add_subcommand(name, help);
    subs->emplace_back(sub, adder(*sub));
  };
  add(add_info_command, "info", "Show a state file's model, sizes, token count and text");
  add(add_save_command, "save", "Run a text through a model and save the state it leaves");
  add(add_convert_command, "convert", "Convert between Aviary state files and the official raw float32 layout");
  return [subs] {
    for (auto& [sub, action] : *subs)
      if (sub->parsed()) return action();
    return 2;
  };
}

}  // namespace aviary::cli
