#include "model/generator.h"

#include <chrono>
#include <cmath>

#include "util/error.h"

namespace aviary {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::Length: return "length";
    case StopReason::EndOfText: return "end_of_text";
    case StopReason::StopToken: return "stop_token";
    case StopReason::StopString: return "stop_string";
    case StopReason::Cancelled: return "cancelled";
  }
  return "?";
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Ids the model can produce but the tokenizer cannot decode (World models
// have 65536 rows for 65530 tokens) are banned so they are never sampled.
SamplerParams with_undecodable_banned(SamplerParams p, int32_t tokenizer_vocab, int32_t model_vocab) {
  for (int32_t id = tokenizer_vocab; id < model_vocab; ++id) p.banned_tokens.push_back(id);
  return p;
}

// The official generate() counts a token with weight 0 when its text is a
// substring of " \t0123456789" (so spaces and digits are not penalised for
// repeating), a quirk kept for identical sampling.
void add_unweighted_tokens(SamplerParams& p, const Tokenizer& tok) {
  static constexpr std::string_view kFree = " \t0123456789";
  for (int32_t id = 1; id < tok.vocab_size(); ++id)
    if (kFree.find(tok.token_bytes(id)) != std::string_view::npos) p.unweighted_tokens.push_back(id);
}

}  // namespace

void check_tokenizer_fits(const Model& model, const Tokenizer& tokenizer, const std::string& vocab_path) {
  constexpr int64_t kMaxPadding = 256;
  const int64_t V = model.config().vocab_size, n = tokenizer.vocab_size();
  if (n > V || V - n > kMaxPadding)
    throw error_in(vocab_path, "this vocabulary has " + std::to_string(n) + " tokens but the model has " +
                                   std::to_string(V) + " (" +
                                   (V >= 65530 ? "it expects the RWKV World vocabulary, rwkv_vocab_v20230424.txt"
                                    : V >= 50277 ? "it expects the GPT-NeoX 20B tokenizer, 20B_tokenizer.json"
                                                 : "no standard RWKV vocabulary fits it") +
                                   ")");
}

namespace {

SamplerParams stepper_sampler_params(const Tokenizer& tokenizer, int32_t model_vocab, const GenerationOptions& o) {
  if (o.max_tokens < 0) throw Error("generate: the token limit must not be negative");
  for (const auto& [id, bias] : o.logit_bias) {
    if (id < 0 || id >= model_vocab)
      throw Error("logit_bias: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(model_vocab - 1) + ")");
    if (!std::isfinite(bias)) throw Error("logit_bias: the bias of token " + std::to_string(id) + " is not finite");
  }
  SamplerParams params = with_undecodable_banned(o.sampling, tokenizer.vocab_size(), model_vocab);
  add_unweighted_tokens(params, tokenizer);
  return params;
}

}  // namespace

TokenStepper::TokenStepper(const Tokenizer& tokenizer, int32_t model_vocab, const GenerationOptions& options)
    : tokenizer_(tokenizer), options_(options),
      sampler_(stepper_sampler_params(tokenizer, model_vocab, options), model_vocab),
      stops_(options.stop_strings) {}

TokenStepper::Step TokenStepper::finish(StopReason reason) {
  Step s;
  s.done = done_ = true;
  stop_ = reason;
  // A stop string hides everything from it on; otherwise the held-back text
  // (an unfinished character, a possible stop string's start) is shown.
  if (reason != StopReason::StopString && reason != StopReason::Cancelled)
    s.tail = stops_.push(utf8_.flush()).text + stops_.flush();
  return s;
}

void TokenStepper::cancel() {
  done_ = true;
  stop_ = StopReason::Cancelled;
}

TokenStepper::Step TokenStepper::next(std::span<const float> logits) {
  if (done_) throw Error("generate: next token asked for after the generation ended");
  if (int32_t(tokens_.size()) >= options_.max_tokens) return finish(StopReason::Length);
  if (options_.cancel && options_.cancel->load(std::memory_order_relaxed)) return finish(StopReason::Cancelled);
  scratch_.assign(logits.begin(), logits.end());
  for (const auto& [id, bias] : options_.logit_bias) scratch_[size_t(id)] += bias;
  const int32_t token = sampler_.sample(scratch_);
  if (sampler_.is_stop_token(token)) return finish(StopReason::StopToken);
  if (token == kEndOfTextId && options_.stop_at_end_of_text) return finish(StopReason::EndOfText);
  tokens_.push_back(token);
  const StopMatcher::Result r = stops_.push(utf8_.push(tokenizer_.token_bytes(token)));
  Step s;
  if (r.stopped) s = finish(StopReason::StopString);
  else if (int32_t(tokens_.size()) >= options_.max_tokens) s = finish(StopReason::Length);
  s.token = token;
  s.text = r.text;
  return s;
}

GenerationResult generate(const Model& model, const Tokenizer& tokenizer, State& state,
                          std::span<const int32_t> prompt, const GenerationOptions& options,
                          const TextSink& on_text) {
  if (prompt.empty()) throw Error("generate: the prompt has no tokens");
  TokenStepper stepper(tokenizer, int32_t(model.config().vocab_size), options);

  GenerationResult res;
  res.prompt_tokens = int64_t(prompt.size());
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, state, logits);
  res.prompt_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  auto emit = [&](const std::string& text) { return text.empty() || on_text(text); };
  for (;;) {
    const TokenStepper::Step step = stepper.next(logits);
    // Fed back at once, so that `state` always covers every generated token
    // (a conversation continues from it exactly).
    if (step.token >= 0) model.forward({&step.token, 1}, state, logits);
    if (!emit(step.text)) { stepper.cancel(); break; }
    if (step.done) { emit(step.tail); break; }
  }
  res.tokens = stepper.tokens();
  res.stop = stepper.stop();
  res.generate_seconds = seconds_since(t0);
  res.logits = std::move(logits);
  return res;
}

}  // namespace aviary
