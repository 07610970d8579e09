// Accuracy measurements of a model: perplexity of a text, the LAMBADA
// last-word task, and how far a model's next-token distributions are from a
// reference model's (how a quantization type's loss is measured).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "text/tokenizer.h"

namespace aviary {

// -- Perplexity ---------------------------------------------------------------

struct PerplexityOptions {
  // 0: the whole text is one sequence and the state is carried across it
  // (the official RWKV convention). N > 0: independent windows of N scored
  // tokens, each from a fresh state with end-of-text first (as llama.cpp's
  // perplexity -c does).
  int64_t window = 0;
  // Positions per forward call; bounds the [T, V] logits buffer.
  int64_t batch = 256;
};

struct PerplexityResult {
  int64_t tokens = 0;    // scored tokens
  double nll_sum = 0;    // sum of -log p(token), natural log
  double mean_nll() const { return tokens ? nll_sum / double(tokens) : 0.0; }
  double ppl() const { return std::exp(mean_nll()); }
};

// Scores every token of `tokens` given the ones before it, with end-of-text
// (id 0) fed first so that the first token is scored too: the model sees
// [0, t0, t1, ...] and predicts [t0, t1, t2, ...]. Throws for an empty text
// or an id outside the model's vocabulary.
PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options = {});

// -log softmax(logits)[target], computed in double.
double token_nll(std::span<const float> logits, int32_t target);

// -- LAMBADA ------------------------------------------------------------------

struct LambadaExample {
  std::string context;  // the text before the last space
  std::string target;   // " " + the last word
};

// Reads a LAMBADA jsonl file (one {"text": ...} per line), splitting each text
// at its last space as the official evaluation does. `limit` > 0 keeps the
// first `limit` examples. Errors name the file and line.
std::vector<LambadaExample> read_lambada(const std::string& path, int64_t limit = 0);

struct LambadaResult {
  int64_t count = 0;
  int64_t correct = 0;  // every target token was the greedy argmax
  double nll_sum = 0;   // summed over all target tokens of all examples
  int64_t target_tokens = 0;
  double accuracy() const { return count ? double(correct) / double(count) : 0.0; }
  // The official figure: exp of the mean over examples of each example's
  // summed target NLL (a multi-token word counts once, with its total NLL).
  double ppl() const { return count ? std::exp(nll_sum / double(count)) : 0.0; }
};

// The official evaluation: the model reads [0] + encode(context) and then
// encode(" " + word); accuracy needs every target token to be the argmax.
LambadaResult evaluate_lambada(const Model& model, const Tokenizer& tokenizer,
                               std::span<const LambadaExample> examples);

// -- Model against reference ----------------------------------------------------

struct CompareResult {
  int64_t positions = 0;
  double kl_sum = 0, kl_max = 0;  // KL(reference || model) per position, nats
  int64_t top1_agree = 0;         // positions where both argmaxes are the same token
  PerplexityResult model_ppl, reference_ppl;  // of the same tokens, official convention
  double kl_mean() const { return positions ? kl_sum / double(positions) : 0.0; }
  double top1_agreement() const { return positions ? double(top1_agree) / double(positions) : 0.0; }
};

// Runs [0] + tokens through both models (state carried across the whole
// text) and compares the next-token distribution at every position. The two
// must have the same vocabulary size (an Error says otherwise).
CompareResult compare_models(const Model& model, const Model& reference, std::span<const int32_t> tokens,
                             int64_t batch = 256);

// KL(p || q) of the softmaxes of two logit rows, in nats (double precision).
double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);

// -- What a decode step reads -----------------------------------------------------

struct WeightTraffic {
  int64_t bytes_per_token = 0;  // weights read to generate one token
  int64_t model_bytes = 0;      // every tensor of the checkpoint
  int64_t n_params = 0;
};

// Computed from the checkpoint's tensors in their stored types: everything
// except the embedding, of which one row is read, and tensors the forward
// pass never reads (RWKV-7 layer 0's v0/v1/v2); then corrected by the size of
// the kernels' copies (Model::packed_weight_bytes_delta: f32 weights held as
// bf16 are read at half their stored size).
WeightTraffic weight_traffic(const Model& model);

}  // namespace aviary
