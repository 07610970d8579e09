// Token sampling with the semantics of the official RWKV pip package
// (ChatRWKV rwkv_pip_package/src/rwkv/utils.py: PIPELINE_ARGS,
// PIPELINE.sample_logits and the penalty loop of PIPELINE.generate).
//
// Per step: banned tokens get logit -inf; every token seen so far gets
// logit -= presence_penalty + count * frequency_penalty; then softmax, top-p
// and top-k on the untempered probabilities, temperature afterwards, draw.
// After a (non-stop) token is drawn every count decays by penalty_decay and
// the drawn token's count grows by 1.
//
// Draws are reproducible on every platform: std::mt19937_64 is fully
// specified by the standard and the uniform double is built from its top 53
// bits here, not by an implementation-defined std:: distribution.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace aviary {

// Defaults are the official PIPELINE_ARGS defaults.
struct SamplerParams {
  float temperature = 1.0f;        // 0 = greedy (argmax, ties -> lowest id)
  float top_p = 0.85f;             // nucleus mass, in [0, 1]
  int32_t top_k = 0;               // 0 = off
  float presence_penalty = 0.2f;   // official alpha_presence
  float frequency_penalty = 0.2f;  // official alpha_frequency
  float penalty_decay = 0.996f;    // official alpha_decay, in [0, 1]
  std::vector<int32_t> banned_tokens;  // official token_ban: never sampled
  std::vector<int32_t> stop_tokens;    // official token_stop: end generation, not counted
  // Tokens recorded with weight 0: they still get the presence penalty once
  // seen, but their count never grows. The official generate() does this for
  // tokens whose text is a substring of " \t0123456789"; the sampler has no
  // tokenizer, so whoever has one fills this list (empty = every token weighs 1).
  std::vector<int32_t> unweighted_tokens;
  uint64_t seed = 0;
};

// Throws aviary::Error naming the first invalid parameter and its value.
void validate_sampler_params(const SamplerParams& params, int32_t vocab_size);

// The pure sampling step of the official sample_logits, with the uniform draw
// in [0, 1) passed in so it is testable without an RNG. Logits may be -inf
// (banned) but not NaN or +inf; at least one must be finite.
int32_t sample_from_logits(std::span<const float> logits, float temperature, float top_p,
                           int32_t top_k, double uniform01);

class Sampler {
 public:
  Sampler(SamplerParams params, int32_t vocab_size);

  // Applies bans and penalties to `logits` in place, draws a token and, unless
  // it is a stop token, records it for the penalties. Exactly one RNG draw per
  // call (even when greedy), so the stream position depends only on the step.
  int32_t sample(std::span<float> logits);

  // The two halves of sample(), for callers that need them separately.
  void apply_penalties(std::span<float> logits) const;
  void accept(int32_t token);

  // Back to the freshly constructed state: no counts, RNG reseeded.
  void reset();

  bool is_stop_token(int32_t token) const;
  double occurrence(int32_t token) const;  // decayed count, 0 if never seen
  const SamplerParams& params() const { return params_; }
  int32_t vocab_size() const { return vocab_size_; }

 private:
  double next_uniform();
  void check_token(int32_t token, const char* what) const;

  enum Flag : uint8_t { kStop = 1, kUnweighted = 2, kSeen = 4 };

  SamplerParams params_;
  int32_t vocab_size_;
  std::mt19937_64 rng_;
  std::vector<double> counts_;   // per token; meaningful only where kSeen is set
  std::vector<uint8_t> flags_;   // per token, Flag bits
  std::vector<int32_t> seen_;    // tokens with kSeen, so penalties cost O(seen)
};

}  // namespace aviary
