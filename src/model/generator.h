// Text generation: prompt prefill, then sample / decode / feed back, with
// streaming output that never splits a UTF-8 character or shows a stop string.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "model/stop_matcher.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

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
  // Added to a token's logit before penalties and sampling (OpenAI's
  // logit_bias); ids must be below the model's vocabulary size.
  std::vector<std::pair<int32_t, float>> logit_bias;
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

// The per-token half of generation, for a caller that runs the model itself
// (generate() below, or a server scheduler that batches many sequences):
// sampling, stop tokens, stop strings, UTF-8-safe text pieces and the token
// limit. The caller feeds every token next() returns back into the model
// before asking for the next one.
class TokenStepper {
 public:
  struct Step {
    int32_t token = -1;  // the token to feed back, or -1 when none was drawn
    std::string text;    // complete UTF-8 text that may be shown now
    bool done = false;   // generation is over (stop() says why)
    std::string tail;    // when done: held-back text to show last (empty after a stop string)
  };

  // Keeps references to `tokenizer` (which must outlive the stepper), copies
  // the options. Throws aviary::Error for a negative token limit or an
  // invalid sampling parameter.
  TokenStepper(const Tokenizer& tokenizer, int32_t model_vocab, const GenerationOptions& options);

  // Draws the next token from `logits` (the model's, after the last token
  // fed; not modified). Ends without a token at the token limit or when
  // options.cancel is set.
  Step next(std::span<const float> logits);

  // Ends the generation as cancelled (the caller stopped it).
  void cancel();

  bool done() const { return done_; }
  StopReason stop() const { return stop_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  Step finish(StopReason reason);

  const Tokenizer& tokenizer_;
  GenerationOptions options_;
  Sampler sampler_;
  StopMatcher stops_;
  Utf8StreamDecoder utf8_;
  std::vector<int32_t> tokens_;
  std::vector<float> scratch_;  // sampling edits its input; the model's logits stay as they are
  bool done_ = false;
  StopReason stop_ = StopReason::Length;
};

// Receives each piece of complete UTF-8 text; returning false cancels.
using TextSink = std::function<bool(std::string_view)>;

// Runs `prompt` from `state` (updated in place: afterwards it holds the whole
// conversation so far) and generates up to options.max_tokens tokens.
GenerationResult generate(const Model& model, const Tokenizer& tokenizer, State& state,
                          std::span<const int32_t> prompt, const GenerationOptions& options,
                          const TextSink& on_text);

}  // namespace aviary
