// aviary synth: a random-weight RWKV-7 with the official dimensions of a
// released size, for benchmarks without downloading the real weights.
#include <cstdio>

#include "cli/commands.h"
#include "model/synth.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

Action add_synth(CLI::App& app) {
  struct Opts {
    std::string shape, out, dtype = "bf16", vocab;
    uint64_t seed = 0;
    int64_t layers = 0;
  };
  auto o = std::make_shared<Opts>();
  std::vector<std::string> names;
  for (const SynthShape& s : synth_shapes()) names.push_back(s.name);
  app.add_option("--shape", o->shape, "the official size to copy")->required()->check(CLI::IsMember(names));
  app.add_option("--out", o->out, "the checkpoint to write: .pth, or .gguf (llama.cpp's rwkv7 layout)")->required();
  std::vector<std::string> dtypes;
  for (DType t : kAllDTypes) dtypes.emplace_back(dtype_name(t));
  app.add_option("--dtype", o->dtype, "stored type of the tensors (block types such as q8_0, q6_k: GGUF matrices only)")
      ->capture_default_str()->check(CLI::IsMember(dtypes));
  app.add_option("--vocab", o->vocab, "GGUF: embed this World vocabulary (llama.cpp needs one to load the file)");
  app.add_option("--seed", o->seed, "random seed; the same seed writes the same file")->capture_default_str();
  app.add_option("--layers", o->layers, "use this many layers instead of the size's own (quick tests)")
      ->check(CLI::PositiveNumber);
  add_threads_flag(app);
  return [=] {
    const SynthShape& shape = synth_shape(o->shape);
    SynthOptions opt;
    for (DType t : kAllDTypes)
      if (dtype_name(t) == o->dtype) opt.dtype = t;
    if (!o->vocab.empty()) opt.vocab = parse_world_vocab(read_file(o->vocab), o->vocab);
    opt.seed = o->seed;
    opt.layers = o->layers;
    write_synth_rwkv7(o->out, shape, opt);
    std::fprintf(stderr, "wrote %s: RWKV-7 %s shape, %lld layers, C %lld, LoRA ranks w %lld a %lld v %lld g %lld, %s\n",
                 o->out.c_str(), shape.name.c_str(), (long long)(o->layers > 0 ? o->layers : shape.n_layer),
                 (long long)shape.n_embd, (long long)shape.lora_w, (long long)shape.lora_a, (long long)shape.lora_v,
                 (long long)shape.lora_g, o->dtype.c_str());
    return 0;
  };
}

}  // namespace aviary::cli
