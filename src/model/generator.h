// Text generation: prompt prefill, then sample / decode / feed back, with
// streaming output that never splits a UTF-8 character or shows a stop string.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "text/tokenizer.h"

namespace aviary {

struct GenerationOptions {
  int32_t max_tokens = 200;
  SamplerParams sampling;
  std::vector<std::string> stop_strings;
  bool stop_at_end_of_text = true;  // token 0 ends the text, as in the official chat
  // Read before each new token: once true, generation ends with
  // StopReason::Cancelled. The prompt is always fed whole, so the state
  // holds the prompt and exactly the tokens generated before the stop. Set it
  // from another thread or a signal handler (Ctrl-C in `aviary chat`).
  const std::atomic<bool>* cancel = nullptr;
};

enum class StopReason { Length, EndOfText, StopToken, StopString, Cancelled };
const char* stop_reason_name(StopReason r);

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (a final stop token not included)
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  StopReason stop = StopReason::Length;
  // The model's logits after the last token fed into the state (the prompt's
  // last token or the last generated one), before any penalty or ban: what
  // the next token would be sampled from if the text went on.
  std::vector<float> logits;
};

// Throws an Error naming `vocab_path` when the tokenizer cannot be the one
// the model was trained with: it has more tokens than the model has rows, or
// far fewer (models pad their vocabulary by at most a few dozen rows).
void check_tokenizer_fits(const Model& model, const Tokenizer& tokenizer, const std::string& vocab_path);

// Receives each piece of complete UTF-8 text; returning false cancels.
using TextSink = std::function<bool(std::string_view)>;

// Runs `prompt` from `state` (updated in place: afterwards it holds the whole
// conversation so far) and generates up to options.max_tokens tokens.
GenerationResult generate(const Model& model, const Tokenizer& tokenizer, State& state,
                          std::span<const int32_t> prompt, const GenerationOptions& options,
                          const TextSink& on_text);

}  // namespace aviary
