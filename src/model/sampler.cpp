#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "util/error.h"

namespace aviary {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

[[noreturn]] void bad_param(const std::string& name, const std::string& rule, double value) {
  throw error_in("sampler", name + " must be " + rule + ", got " + num(value));
}

// Conditions are written as !(ok) so that NaN fails them too.
void check_sampling_args(float temperature, float top_p, int32_t top_k) {
  if (!(temperature >= 0 && std::isfinite(temperature)))
    bad_param("temperature", "a finite number >= 0", temperature);
  if (!(top_p >= 0 && top_p <= 1)) bad_param("top_p", "in [0, 1]", top_p);
  if (top_k < 0) bad_param("top_k", ">= 0", top_k);
}

void check_penalty(const char* name, float value) {
  if (!(value >= 0 && std::isfinite(value))) bad_param(name, "a finite number >= 0", value);
}

void check_ids(const std::vector<int32_t>& ids, const char* name, int32_t vocab_size) {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size)
      throw error_in("sampler", std::string(name) + " contains token " + std::to_string(id) +
                                    ", outside the vocabulary of " + std::to_string(vocab_size) +
                                    " tokens");
}

// The largest logit. NaN or +inf would poison the softmax, and all -inf
// leaves nothing to sample: both are errors rather than a silent token 0.
float checked_max(std::span<const float> logits) {
  if (logits.empty()) throw error_in("sampler", "no logits to sample from");
  float max = -kInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (std::isnan(l) || l == kInf)
      throw error_in("sampler", "logit of token " + std::to_string(i) + " is " + num(l));
    max = std::max(max, l);
  }
  if (max == -kInf) throw error_in("sampler", "every token has logit -inf (all banned?)");
  return max;
}

// First maximum, so ties go to the lowest id.
int32_t argmax(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

// fp32 probabilities like the official F.softmax(logits.float()); the sum is
// kept in double so a 65k vocabulary does not lose the small terms.
std::vector<float> softmax(std::span<const float> logits, float max) {
  std::vector<float> probs(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    probs[i] = std::exp(logits[i] - max);
    sum += probs[i];
  }
  for (float& p : probs) p = float(p / sum);
  return probs;
}

// Official top-p: the cutoff is the probability at the first sorted position
// where the cumulative sum reaches top_p (>=), and only tokens strictly below
// it are dropped, so every token tying with the cutoff survives. Empty when
// `sorted_desc` (a head of the descending order) does not reach top_p.
std::optional<float> top_p_cutoff(const std::vector<float>& sorted_desc, float top_p) {
  double cumulative = 0;
  for (float p : sorted_desc) {
    cumulative += p;
    if (cumulative >= top_p) return p;
  }
  return std::nullopt;
}

// Enough of the descending order to decide both cuts: a head that reaches
// top_p (when < 1) and holds at least min_count tokens. A full sort of a 65k
// vocabulary costs milliseconds per token while the nucleus is usually far
// smaller, so only tokens above a threshold are sorted, lowering it as needed.
// Every p >= threshold is taken, so the head is exactly a prefix of the full
// descending order and the cumulative sums are the same.
std::vector<float> sorted_head(const std::vector<float>& probs, float top_p, size_t min_count) {
  float threshold = *std::max_element(probs.begin(), probs.end()) / 64;
  for (;;) {
    std::vector<float> head;
    for (float p : probs)
      if (p >= threshold) head.push_back(p);
    std::sort(head.begin(), head.end(), std::greater<float>());
    const bool reaches_p = top_p >= 1 || top_p_cutoff(head, top_p).has_value();
    const bool enough = head.size() >= min_count && reaches_p;
    if (enough || head.size() == probs.size()) return head;
    // Once the head is a large part of the vocabulary, one full sort is
    // cheaper than more rounds; threshold 0 takes every token.
    threshold = head.size() * 4 > probs.size() ? 0.0f : threshold / 64;
  }
}

// Keeps exactly top_k tokens by untempered probability. The official code
// breaks ties by np.argsort's unspecified order; here the lowest ids win.
void apply_top_k(std::vector<float>& probs, const std::vector<float>& sorted_desc,
                 int32_t top_k) {
  const float kth = sorted_desc[size_t(top_k) - 1];
  size_t above = size_t(top_k) - 1;  // how many are strictly larger than kth
  while (above > 0 && sorted_desc[above - 1] == kth) --above;
  size_t tie_quota = size_t(top_k) - above;
  for (float& p : probs) {
    if (p > kth) continue;
    if (p == kth && tie_quota > 0) {
      --tie_quota;
      continue;
    }
    p = 0;
  }
}

// Both cuts look at the untempered probabilities, as in the official order.
void apply_top_p_top_k(std::vector<float>& probs, float top_p, int32_t top_k) {
  const bool use_k = top_k > 0 && size_t(top_k) < probs.size();
  // top_p = 1 keeps every token: in exact arithmetic the sum reaches 1 only
  // at the last one. (Official np.argmax over an all-false mask, when fp32
  // rounding leaves the sum just under 1, would pick position 0: greedy by
  // accident.)
  if (top_p >= 1 && !use_k) return;
  const std::vector<float> head = sorted_head(probs, top_p, use_k ? size_t(top_k) : 0);
  if (use_k) apply_top_k(probs, head, top_k);
  if (top_p >= 1) return;
  // A head that never reaches top_p is the whole vocabulary (rounding): keep all.
  const float cutoff = top_p_cutoff(head, top_p).value_or(head.back());
  for (float& p : probs)
    if (p < cutoff) p = 0;
}

// p^(1/T), scaled by pmax^(-1/T) which renormalising cancels: computed as
// exp((log p - log pmax) / T) so a small T cannot underflow every weight to 0.
std::vector<double> tempered_weights(const std::vector<float>& probs, float temperature) {
  std::vector<double> weights(probs.begin(), probs.end());
  if (temperature == 1.0f) return weights;
  const double log_max = std::log(double(*std::max_element(probs.begin(), probs.end())));
  const double inv_t = 1.0 / double(temperature);
  for (double& w : weights)
    if (w > 0) w = std::exp((std::log(w) - log_max) * inv_t);
  return weights;
}

// Inverse CDF over token ids in id order, like np.random.choice: the first
// token whose cumulative weight exceeds u * total. Zero weights never win.
int32_t draw(const std::vector<double>& weights, double uniform01) {
  double total = 0;
  for (double w : weights) total += w;
  const double target = uniform01 * total;
  double cumulative = 0;
  int32_t last = -1;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    cumulative += weights[i];
    last = int32_t(i);
    if (cumulative > target) return last;
  }
  return last;  // u * total rounded up to total
}

}  // namespace

void validate_sampler_params(const SamplerParams& params, int32_t vocab_size) {
  if (vocab_size <= 0) bad_param("vocab_size", "> 0", vocab_size);
  check_sampling_args(params.temperature, params.top_p, params.top_k);
  check_penalty("presence_penalty", params.presence_penalty);
  check_penalty("frequency_penalty", params.frequency_penalty);
  if (!(params.penalty_decay >= 0 && params.penalty_decay <= 1))
    bad_param("penalty_decay", "in [0, 1]", params.penalty_decay);
  check_ids(params.banned_tokens, "banned_tokens", vocab_size);
  check_ids(params.stop_tokens, "stop_tokens", vocab_size);
  check_ids(params.unweighted_tokens, "unweighted_tokens", vocab_size);
}

int32_t sample_from_logits(std::span<const float> logits, float temperature, float top_p,
                           int32_t top_k, double uniform01) {
  check_sampling_args(temperature, top_p, top_k);
  if (!(uniform01 >= 0 && uniform01 < 1)) bad_param("uniform01", "in [0, 1)", uniform01);
  const float max = checked_max(logits);
  // The official code maps temperature 0 to top_p = 0 (keep the top token and
  // its ties); plain argmax makes greedy decoding deterministic.
  if (temperature == 0) return argmax(logits);
  std::vector<float> probs = softmax(logits, max);
  apply_top_p_top_k(probs, top_p, top_k);
  return draw(tempered_weights(probs, temperature), uniform01);
}

Sampler::Sampler(SamplerParams params, int32_t vocab_size)
    : params_(std::move(params)), vocab_size_(vocab_size) {
  validate_sampler_params(params_, vocab_size_);
  counts_.assign(size_t(vocab_size_), 0.0);
  flags_.assign(size_t(vocab_size_), 0);
  for (int32_t id : params_.stop_tokens) flags_[size_t(id)] |= kStop;
  for (int32_t id : params_.unweighted_tokens) flags_[size_t(id)] |= kUnweighted;
  rng_.seed(params_.seed);
}

int32_t Sampler::sample(std::span<float> logits) {
  apply_penalties(logits);
  const double u = next_uniform();
  const int32_t token = sample_from_logits(logits, params_.temperature, params_.top_p,
                                           params_.top_k, u);
  // Official generate() breaks on a stop token before counting it.
  if (!is_stop_token(token)) accept(token);
  return token;
}

void Sampler::apply_penalties(std::span<float> logits) const {
  if (logits.size() != size_t(vocab_size_))
    throw error_in("sampler", "got " + std::to_string(logits.size()) +
                                  " logits for a vocabulary of " + std::to_string(vocab_size_) +
                                  " tokens");
  for (int32_t id : params_.banned_tokens) logits[size_t(id)] = -kInf;
  // A seen token pays the presence penalty even when its count is 0
  // (unweighted tokens): the official loop runs over every key it has stored.
  for (int32_t id : seen_) {
    const double penalty = double(params_.presence_penalty) +
                           counts_[size_t(id)] * double(params_.frequency_penalty);
    logits[size_t(id)] = float(double(logits[size_t(id)]) - penalty);
  }
}

void Sampler::accept(int32_t token) {
  check_token(token, "accepted");
  // Official order: decay every existing count, then add the new token.
  for (int32_t id : seen_) counts_[size_t(id)] *= double(params_.penalty_decay);
  uint8_t& flags = flags_[size_t(token)];
  if (!(flags & kSeen)) {
    flags |= kSeen;
    seen_.push_back(token);
    counts_[size_t(token)] = 0;
  }
  if (!(flags & kUnweighted)) counts_[size_t(token)] += 1;
}

void Sampler::reset() {
  for (int32_t id : seen_) {
    counts_[size_t(id)] = 0;
    flags_[size_t(id)] &= uint8_t(~kSeen);
  }
  seen_.clear();
  rng_.seed(params_.seed);
}

bool Sampler::is_stop_token(int32_t token) const {
  return token >= 0 && token < vocab_size_ && (flags_[size_t(token)] & kStop);
}

double Sampler::occurrence(int32_t token) const {
  check_token(token, "queried");
  return (flags_[size_t(token)] & kSeen) ? counts_[size_t(token)] : 0.0;
}

// The top 53 bits of one mt19937_64 output as a double in [0, 1): exact and
// identical on every platform, unlike std::uniform_real_distribution.
double Sampler::next_uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

void Sampler::check_token(int32_t token, const char* what) const {
  if (token < 0 || token >= vocab_size_)
    throw error_in("sampler", std::string(what) + " token " + std::to_string(token) +
                                  " is outside the vocabulary of " + std::to_string(vocab_size_) +
                                  " tokens");
}

}  // namespace aviary
