// aviary eval: perplexity of a text, LAMBADA accuracy, and the distance of a
// model's predictions from a reference model's (how quantization is judged).
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/eval.h"
#include "model/generator.h"
#include "util/error.h"
#include "util/file_util.h"

namespace aviary::cli {

namespace {

struct EvalOpts {
  std::string model, vocab, ppl_file, lambada_file, reference;
  int64_t ctx = 0, limit = 0, max_tokens = 0;
  bool json = false;
};

// The text's tokens, cut to --max-tokens when given.
std::vector<int32_t> text_tokens(const EvalOpts& o, const Tokenizer& tokenizer) {
  std::vector<int32_t> tokens = tokenizer.encode(read_file(o.ppl_file));
  if (o.max_tokens > 0 && int64_t(tokens.size()) > o.max_tokens) tokens.resize(size_t(o.max_tokens));
  if (tokens.empty()) throw error_in(o.ppl_file, "the text has no tokens");
  return tokens;
}

nlohmann::json ppl_json(const PerplexityResult& r) {
  return {{"tokens", r.tokens}, {"mean_nll", r.mean_nll()}, {"ppl", r.ppl()}};
}

void run_ppl(const EvalOpts& o, const Model& model, const std::vector<int32_t>& tokens, nlohmann::json& out) {
  const PerplexityResult r = perplexity(model, tokens, {o.ctx});
  out["ppl"] = ppl_json(r);
  out["ppl"]["file"] = o.ppl_file;
  out["ppl"]["window"] = o.ctx;
  if (o.json) return;
  const std::string how = o.ctx > 0 ? "independent windows of " + std::to_string(o.ctx) + " tokens, each from a fresh state"
                                    : "one sequence, the state carried across the whole text";
  std::printf("perplexity: %.4f over %lld tokens (mean NLL %.5f nats; end-of-text first; %s)\n", r.ppl(),
              (long long)r.tokens, r.mean_nll(), how.c_str());
}

void run_lambada(const EvalOpts& o, const Model& model, const Tokenizer& tokenizer, nlohmann::json& out) {
  const auto examples = read_lambada(o.lambada_file, o.limit);
  const LambadaResult r = evaluate_lambada(model, tokenizer, examples);
  out["lambada"] = {{"file", o.lambada_file}, {"count", r.count},     {"correct", r.correct},
                    {"accuracy", r.accuracy()}, {"ppl", r.ppl()},     {"target_tokens", r.target_tokens}};
  if (o.json) return;
  std::printf("LAMBADA: accuracy %.2f%% (%lld of %lld), ppl %.3f\n", 100 * r.accuracy(), (long long)r.correct,
              (long long)r.count, r.ppl());
}

void run_compare(const EvalOpts& o, const Model& model, const std::vector<int32_t>& tokens, nlohmann::json& out) {
  const auto reference = load_model(o.reference);
  const CompareResult r = compare_models(model, *reference, tokens);
  out["compare"] = {{"reference", o.reference},     {"positions", r.positions},
                    {"kl_mean", r.kl_mean()},       {"kl_max", r.kl_max},
                    {"top1_agreement", r.top1_agreement()},
                    {"model_ppl", r.model_ppl.ppl()}, {"reference_ppl", r.reference_ppl.ppl()}};
  if (o.json) return;
  std::printf("against %s over %lld positions:\n", o.reference.c_str(), (long long)r.positions);
  std::printf("  KL(reference || model): mean %.6g, max %.6g nats\n", r.kl_mean(), r.kl_max);
  std::printf("  top-1 agreement: %.2f%%\n", 100 * r.top1_agreement());
  std::printf("  perplexity: model %.4f, reference %.4f\n", r.model_ppl.ppl(), r.reference_ppl.ppl());
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto o = std::make_shared<EvalOpts>();
  app.add_option("-m,--model", o->model, "checkpoint (.pth or .safetensors)")->required();
  app.add_option("--vocab", o->vocab, "vocabulary (default: the one a GGUF model embeds, else found next to the model)");
  auto* ppl = app.add_option("--ppl", o->ppl_file, "perplexity of this text file (token 0 first, as the official code)");
  app.add_option("--lambada", o->lambada_file, "LAMBADA accuracy and perplexity of this jsonl file");
  app.add_option("--compare-to", o->reference,
                 "KL divergence and top-1 agreement against this reference model, on the --ppl text")
      ->needs(ppl);
  app.add_option("--ctx", o->ctx, "score --ppl in independent windows of N tokens from a fresh state; "
                                  "0: one sequence, state carried across the whole text")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--limit", o->limit, "LAMBADA: only the first N examples (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("--max-tokens", o->max_tokens, "--ppl: only the first N tokens of the text (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", o->json, "print one JSON object");
  add_threads_flag(app);
  return [=] {
    if (o->ppl_file.empty() && o->lambada_file.empty())
      throw Error("eval: give --ppl FILE and/or --lambada FILE");
    const auto model = load_model(o->model);
    const auto tokenizer = model_tokenizer(o->vocab, o->model, *model);
    nlohmann::json out = {{"model", o->model}};
    if (!o->ppl_file.empty()) {
      const std::vector<int32_t> tokens = text_tokens(*o, *tokenizer);
      run_ppl(*o, *model, tokens, out);
      if (!o->reference.empty()) run_compare(*o, *model, tokens, out);
    }
    if (!o->lambada_file.empty()) run_lambada(*o, *model, *tokenizer, out);
    if (o->json) std::printf("%s\n", out.dump().c_str());
    return 0;
  };
}

}  // namespace aviary::cli
