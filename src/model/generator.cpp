#include "model/generator.h"

#include <chrono>

#include "model/stop_matcher.h"
#include "text/utf8.h"
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

GenerationResult generate(const Model& model, const Tokenizer& tokenizer, State& state,
                          std::span<const int32_t> prompt, const GenerationOptions& options,
                          const TextSink& on_text) {
  if (prompt.empty()) throw Error("generate: the prompt has no tokens");
  if (options.max_tokens < 0) throw Error("generate: the token limit must not be negative");
  const int32_t V = int32_t(model.config().vocab_size);
  SamplerParams params = with_undecodable_banned(options.sampling, tokenizer.vocab_size(), V);
  add_unweighted_tokens(params, tokenizer);
  Sampler sampler(std::move(params), V);
  StopMatcher stops(options.stop_strings);
  Utf8StreamDecoder utf8;

  GenerationResult res;
  res.prompt_tokens = int64_t(prompt.size());
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  model.forward(prompt, state, logits);
  res.prompt_seconds = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  auto emit = [&](const std::string& text) { return text.empty() || on_text(text); };
  bool cancelled = false;
  std::vector<float> scratch;  // sampling edits its input; `logits` stay the model's own
  while (int32_t(res.tokens.size()) < options.max_tokens) {
    if (options.cancel && options.cancel->load(std::memory_order_relaxed)) { cancelled = true; break; }
    scratch.assign(logits.begin(), logits.end());
    const int32_t token = sampler.sample(scratch);
    if (sampler.is_stop_token(token)) { res.stop = StopReason::StopToken; break; }
    if (token == kEndOfTextId && options.stop_at_end_of_text) { res.stop = StopReason::EndOfText; break; }
    res.tokens.push_back(token);
    // Fed back at once, so that `state` always covers every generated token
    // (a conversation continues from it exactly).
    model.forward({&token, 1}, state, logits);
    const StopMatcher::Result r = stops.push(utf8.push(tokenizer.token_bytes(token)));
    if (!emit(r.text)) { cancelled = true; break; }
    if (r.stopped) { res.stop = StopReason::StopString; break; }
  }
  if (cancelled) res.stop = StopReason::Cancelled;
  else if (res.stop != StopReason::StopString) emit(stops.push(utf8.flush()).text + stops.flush());
  res.generate_seconds = seconds_since(t0);
  res.logits = std::move(logits);
  return res;
}

}  // namespace aviary
