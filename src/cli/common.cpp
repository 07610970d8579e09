#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "io/checkpoint.h"
#include "model/generator.h"
#include "model/gguf_rwkv7_vocab.h"
#include "text/world_tokenizer.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace aviary::cli {

CLI::Option* add_sampling_flags(CLI::App& app, SamplerParams& s, std::string& ban) {
  app.add_option("--temperature,--temp", s.temperature, "sampling temperature; 0 = greedy")->capture_default_str();
  app.add_option("--top-p", s.top_p, "nucleus sampling mass")->capture_default_str();
  app.add_option("--top-k", s.top_k, "keep only the k most likely tokens; 0 = off")->capture_default_str();
  app.add_option("--presence-penalty", s.presence_penalty, "subtracted once a token has appeared")->capture_default_str();
  app.add_option("--frequency-penalty", s.frequency_penalty, "subtracted per (decayed) occurrence")->capture_default_str();
  app.add_option("--penalty-decay", s.penalty_decay, "occurrence counts decay by this per token")->capture_default_str();
  app.add_option("--ban", ban, "token ids never to sample, e.g. 0,11");
  add_threads_flag(app);
  return app.add_option("--seed", s.seed, "random seed (default: a fresh one); "
                                          "the same seed repeats a run exactly");
}

void add_threads_flag(CLI::App& app) {
  app.add_option_function<int>(
         "-t,--threads", [](const int& n) { set_default_thread_count(n); },
         "threads for the kernels (default: one per physical core)")
      ->check(CLI::PositiveNumber);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& what) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\n' || text[i] == '\t')) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ' && text[j] != '\n' && text[j] != '\t') ++j;
    const std::string item = text.substr(i, j - i);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX)
      throw Error(what + ": '" + item + "' is not a token id (a non-negative integer)");
    ids.push_back(int32_t(v));
    i = j;
  }
  return ids;
}

std::string find_vocab(const std::string& given, const std::string& model_path, int64_t model_vocab) {
  if (!given.empty()) return given;
  namespace fs = std::filesystem;
  const fs::path dir = fs::absolute(model_path).parent_path();
  // The vocabulary size tells which tokenizer a model was trained with: World
  // models have 65536 rows, GPT-NeoX (Pile/Raven) models 50277 (or padded).
  const bool world = model_vocab >= 65530, neox = !world && model_vocab >= 50277;
  std::vector<const char*> names;
  if (!neox) names = {"rwkv_vocab_v20230424.txt", "vocab.txt"};
  if (!world) names.insert(names.end(), {"20B_tokenizer.json", "tokenizer.json"});
  std::string tried;
  for (const char* name : names) {
    if (fs::is_regular_file(dir / name)) return (dir / name).string();
    tried += (tried.empty() ? "" : ", ") + std::string(name);
  }
  const std::string expects = world  ? ", which expects the RWKV World vocabulary"
                              : neox ? ", which expects the GPT-NeoX 20B tokenizer"
                                     : "";
  throw Error("no vocabulary found next to " + model_path + " (a model of " + std::to_string(model_vocab) +
              " tokens" + expects + "; looked for " + tried + "); give one with --vocab FILE");
}

std::unique_ptr<Tokenizer> model_tokenizer(const std::string& given, const std::string& model_path,
                                           const Model& model) {
  std::string source;
  std::unique_ptr<Tokenizer> tokenizer;
  // The model's own metadata, read when it was loaded (a GGUF's is kept).
  const GgufMetadata* metadata = model.checkpoint().gguf_metadata();
  if (given.empty() && metadata && metadata->find("tokenizer.ggml.model")) {
    source = model_path + " (its embedded vocabulary)";
    try {
      tokenizer = std::make_unique<WorldTokenizer>(WorldTokenizer::from_entries(world_vocab_from_gguf(*metadata), source));
    } catch (const Error& e) {
      throw error_in(model_path, e.what());
    }
  } else {
    source = find_vocab(given, model_path, model.config().vocab_size);
    tokenizer = load_tokenizer(source);
  }
  check_tokenizer_fits(model, *tokenizer, source);
  return tokenizer;
}

}  // namespace aviary::cli
