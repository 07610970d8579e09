// aviary info -m MODEL [--json]
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/model.h"

namespace aviary::cli {

namespace {

nlohmann::json describe(const Model& model) {
  const ModelConfig& c = model.config();
  const Checkpoint& ck = model.checkpoint();
  int64_t params = 0;
  std::map<std::string, int64_t> by_dtype;  // parameters per stored type
  for (const auto& t : ck.tensors()) {
    params += t.numel();
    by_dtype[std::string(dtype_name(t.dtype))] += t.numel();
  }
  nlohmann::json j;
  j["file"] = ck.path();
  j["format"] = ck.format() == CheckpointFormat::Pth ? "pth" : ck.format() == CheckpointFormat::Gguf ? "gguf" : "safetensors";
  j["file_size"] = ck.file_size();
  j["architecture"] = c.arch_name();
  j["version"] = c.version;
  j["sub_version"] = c.sub_version;
  j["n_layer"] = c.n_layer;
  j["n_embd"] = c.n_embd;
  j["n_head"] = c.n_head;
  j["head_size"] = c.head_size;
  j["vocab_size"] = c.vocab_size;
  j["ffn_dim"] = c.ffn_dim;
  if (c.arch == Arch::RWKV7)
    j["lora_ranks"] = {{"w", c.lora_w}, {"a", c.lora_a}, {"v", c.lora_v}, {"g", c.lora_g}};
  if (c.arch == Arch::RWKV6) j["lora_ranks"] = {{"time_maa", c.lora_mix}, {"time_decay", c.lora_decay}};
  j["n_tensors"] = ck.tensors().size();
  j["n_params"] = params;
  j["dtypes"] = by_dtype;
  j["state_floats"] = model.new_state().raw().size();
  return j;
}

void print_text(const nlohmann::json& j) {
  std::printf("file:          %s (%s, %s)\n", j["file"].get<std::string>().c_str(),
              j["format"].get<std::string>().c_str(), human_bytes(j["file_size"].get<double>()).c_str());
  std::printf("architecture:  %s, version %s\n", j["architecture"].get<std::string>().c_str(),
              j["sub_version"].get<std::string>().c_str());
  std::printf("layers:        %lld\n", j["n_layer"].get<long long>());
  if (j["n_head"].get<long long>() > 0)
    std::printf("embedding:     %lld (%lld heads of %lld)\n", j["n_embd"].get<long long>(),
                j["n_head"].get<long long>(), j["head_size"].get<long long>());
  else
    std::printf("embedding:     %lld\n", j["n_embd"].get<long long>());
  std::printf("vocabulary:    %lld\n", j["vocab_size"].get<long long>());
  std::printf("ffn width:     %lld\n", j["ffn_dim"].get<long long>());
  if (j.contains("lora_ranks")) {
    std::string ranks;
    for (auto& [k, v] : j["lora_ranks"].items()) ranks += (ranks.empty() ? "" : ", ") + k + " " + std::to_string(v.get<long long>());
    std::printf("lora ranks:    %s\n", ranks.c_str());
  }
  std::printf("parameters:    %lld in %zu tensors\n", j["n_params"].get<long long>(),
              j["n_tensors"].get<size_t>());
  std::string types;
  for (auto& [k, v] : j["dtypes"].items()) types += (types.empty() ? "" : ", ") + k + " " + std::to_string(v.get<long long>());
  std::printf("dtypes:        %s\n", types.c_str());
  std::printf("state:         %s (%zu float32)\n",
              human_bytes(double(j["state_floats"].get<size_t>()) * 4).c_str(), j["state_floats"].get<size_t>());
}

}  // namespace

Action add_info(CLI::App& app) {
  auto model_path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app.add_option("-m,--model", *model_path, "checkpoint (.pth, .safetensors or GGUF)")->required();
  app.add_flag("--json", *json, "print one JSON object");
  return [=] {
    const auto model = load_model(*model_path);
    const nlohmann::json j = describe(*model);
    if (*json) std::printf("%s\n", j.dump().c_str());
    else print_text(j);
    return 0;
  };
}

}  // namespace aviary::cli
