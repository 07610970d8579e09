// aviary quantize IN OUT --type TYPE [--vocab FILE | --no-vocab] [--name NAME]
//
// Writes an RWKV-7 checkpoint (.pth, .safetensors or llama.cpp GGUF) as a
// llama.cpp rwkv7 GGUF file whose big matrices have TYPE (docs/gguf.md).
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "io/checkpoint.h"
#include "model/gguf_rwkv7.h"
#include "model/gguf_rwkv7_vocab.h"
#include "model/config.h"
#include "text/world_vocab.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

namespace {

// Every DType by name: quantize_row writes each of them.
std::map<std::string, DType> type_names() {
  std::map<std::string, DType> types;
  for (DType t : kAllDTypes) types.emplace(dtype_name(t), t);
  return types;
}
const std::map<std::string, DType> kTypes = type_names();

struct QuantizeArgs {
  std::string in, out, type, vocab, name;
  bool no_vocab = false;
};

// The vocabulary to embed: --vocab, else the one already in a GGUF input,
// else the World vocabulary file next to the input.
std::vector<VocabEntry> choose_vocab(const QuantizeArgs& a, const Checkpoint& in, int64_t n_vocab) {
  if (a.no_vocab) return {};
  if (a.vocab.empty() && in.gguf_metadata() && in.gguf_metadata()->find("tokenizer.ggml.model")) {
    try {
      return world_vocab_from_gguf(*in.gguf_metadata());
    } catch (const Error& e) {
      throw error_in(in.path(), e.what());
    }
  }
  const std::string path = find_vocab(a.vocab, a.in, n_vocab);
  return parse_world_vocab(read_file(path), path);
}

int run_quantize(const QuantizeArgs& a) {
  const DType type = kTypes.at(a.type);
  const Checkpoint in = Checkpoint::open(a.in);
  const bool gguf = in.format() == CheckpointFormat::Gguf;
  const Checkpoint official = gguf ? official_rwkv7_view(in) : in;
  const ModelConfig config = detect_config(official);
  if (config.arch != Arch::RWKV7)
    throw error_in(a.in, "GGUF output supports RWKV-7 only; this checkpoint is " + config.arch_name());
  const std::vector<VocabEntry> vocab = choose_vocab(a, in, config.vocab_size);
  const Rwkv7GgufReport r = write_rwkv7_gguf(official, a.out, type, vocab, a.name);

  const char* format = gguf ? "gguf" : in.format() == CheckpointFormat::Pth ? "pth" : "safetensors";
  std::printf("in:   %s (%s, %s)\n", a.in.c_str(), format, human_bytes(double(in.file_size())).c_str());
  std::printf("out:  %s (gguf rwkv7, matrices %s, %s, %.2fx smaller)\n", a.out.c_str(), a.type.c_str(),
              human_bytes(double(r.file_bytes)).c_str(), double(in.file_size()) / double(r.file_bytes));
  if (!r.f16_fallbacks.empty()) {
    std::printf("f16:  %zu matrices whose rows are not whole %s blocks:", r.f16_fallbacks.size(), a.type.c_str());
    for (const std::string& n : r.f16_fallbacks) std::printf(" %s", n.c_str());
    std::printf("\n");
  }
  if (vocab.empty())
    std::printf("vocab: none embedded (llama.cpp needs one: give --vocab)\n");
  else
    std::printf("vocab: %lld World tokens embedded%s\n", static_cast<long long>(r.vocab_tokens),
                r.vocab_dropped ? (", " + std::to_string(r.vocab_dropped) + " beyond the model's rows left out").c_str()
                                : "");
  return 0;
}

}  // namespace

Action add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  app.add_option("IN", a->in, "RWKV-7 checkpoint: .pth, .safetensors or GGUF")->required();
  app.add_option("OUT", a->out, "GGUF file to write")->required();
  std::vector<std::string> names;
  for (const auto& [n, t] : kTypes) names.push_back(n);
  app.add_option("-t,--type", a->type, "type of the big matrices (the small tensors stay f32)")
      ->required()
      ->check(CLI::IsMember(names));
  app.add_option("--vocab", a->vocab, "World vocabulary to embed (default: the input's, or the file next to it)");
  app.add_flag("--no-vocab", a->no_vocab, "embed no vocabulary (llama.cpp will not load the file)");
  app.add_option("--name", a->name, "general.name (default: OUT's file name without extension)");
  return [a] { return run_quantize(*a); };
}

}  // namespace aviary::cli
