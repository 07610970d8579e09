#include "model/eval.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace aviary {

namespace {

void check_ids(const Model& model, std::span<const int32_t> tokens, const char* what) {
  const int64_t V = model.config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      throw Error(std::string(what) + ": token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                  ", outside the model's vocabulary of " + std::to_string(V));
}

// Feeds `inputs` from `state` in batches and calls fn(i, logits after
// inputs[i]) for every position, so that memory stays at batch x V floats
// however long the text is.
void for_each_position(const Model& model, State& state, std::span<const int32_t> inputs, int64_t batch,
                       const std::function<void(size_t, std::span<const float>)>& fn) {
  const size_t V = size_t(model.config().vocab_size);
  const size_t step = size_t(std::max<int64_t>(batch, 1));
  std::vector<float> logits;
  for (size_t begin = 0; begin < inputs.size(); begin += step) {
    const auto chunk = inputs.subspan(begin, std::min(step, inputs.size() - begin));
    model.forward(chunk, state, logits, /*all_positions=*/true);
    for (size_t t = 0; t < chunk.size(); ++t) fn(begin + t, std::span<const float>(logits).subspan(t * V, V));
  }
}

double log_sum_exp(std::span<const float> x) {
  double m = -std::numeric_limits<double>::infinity();
  for (float v : x) m = std::max(m, double(v));
  double s = 0;
  for (float v : x) s += std::exp(double(v) - m);
  return m + std::log(s);
}

size_t argmax_of(std::span<const float> x) {
  return size_t(std::max_element(x.begin(), x.end()) - x.begin());
}

// [0] + tokens without its last element: the inputs that predict `tokens`.
std::vector<int32_t> shifted_inputs(std::span<const int32_t> tokens) {
  std::vector<int32_t> in;
  in.reserve(tokens.size());
  in.push_back(kEndOfTextId);
  in.insert(in.end(), tokens.begin(), tokens.end() - 1);
  return in;
}

}  // namespace

double token_nll(std::span<const float> logits, int32_t target) {
  return log_sum_exp(logits) - double(logits[size_t(target)]);
}

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options) {
  if (tokens.empty()) throw Error("perplexity: the text has no tokens");
  if (options.window < 0) throw Error("perplexity: the window must be 0 (whole text) or positive");
  check_ids(model, tokens, "perplexity");
  PerplexityResult r;
  const size_t window = options.window > 0 ? size_t(options.window) : tokens.size();
  for (size_t begin = 0; begin < tokens.size(); begin += window) {
    const auto targets = tokens.subspan(begin, std::min(window, tokens.size() - begin));
    State state = model.new_state();
    for_each_position(model, state, shifted_inputs(targets), options.batch,
                      [&](size_t i, std::span<const float> row) { r.nll_sum += token_nll(row, targets[i]); });
    r.tokens += int64_t(targets.size());
  }
  return r;
}

std::vector<LambadaExample> read_lambada(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error_in(path, "cannot open the LAMBADA file");
  std::vector<LambadaExample> out;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (limit > 0 && int64_t(out.size()) >= limit) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw error_in(where, std::string("not a JSON line (") + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw error_in(where, "expected an object with a string \"text\"");
    const std::string text = j["text"].get<std::string>();
    const size_t space = text.rfind(' ');
    if (space == std::string::npos || space + 1 >= text.size())
      throw error_in(where, "the text has no last word after a space");
    out.push_back({text.substr(0, space), " " + text.substr(space + 1)});
  }
  if (out.empty()) throw error_in(path, "no examples");
  return out;
}

LambadaResult evaluate_lambada(const Model& model, const Tokenizer& tokenizer, std::span<const LambadaExample> examples) {
  LambadaResult r;
  std::vector<float> logits;
  const size_t V = size_t(model.config().vocab_size);
  for (const LambadaExample& ex : examples) {
    std::vector<int32_t> src = tokenizer.encode(ex.context);
    src.insert(src.begin(), kEndOfTextId);
    const std::vector<int32_t> dst = tokenizer.encode(ex.target);
    if (dst.empty()) throw Error("LAMBADA: the target \"" + ex.target + "\" has no tokens");
    check_ids(model, src, "LAMBADA context");
    check_ids(model, dst, "LAMBADA target");
    // The context but its last token only builds the state; then the last
    // context token and the target but its last give one row per target token.
    State state = model.new_state();
    if (src.size() > 1) model.forward(std::span(src).first(src.size() - 1), state, logits);
    std::vector<int32_t> tail{src.back()};
    tail.insert(tail.end(), dst.begin(), dst.end() - 1);
    model.forward(tail, state, logits, /*all_positions=*/true);
    bool correct = true;
    for (size_t i = 0; i < dst.size(); ++i) {
      const std::span<const float> row(logits.data() + i * V, V);
      r.nll_sum += token_nll(row, dst[i]);
      if (argmax_of(row) != size_t(dst[i])) correct = false;
    }
    r.target_tokens += int64_t(dst.size());
    r.correct += correct ? 1 : 0;
    ++r.count;
  }
  return r;
}

double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  const double lp = log_sum_exp(p_logits), lq = log_sum_exp(q_logits);
  double kl = 0;
  for (size_t i = 0; i < p_logits.size(); ++i) {
    const double log_p = double(p_logits[i]) - lp, log_q = double(q_logits[i]) - lq;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can give -1e-17 for identical rows
}

CompareResult compare_models(const Model& model, const Model& reference, std::span<const int32_t> tokens, int64_t batch) {
  if (model.config().vocab_size != reference.config().vocab_size)
    throw Error("compare: the models have different vocabularies (" + std::to_string(model.config().vocab_size) +
                " and " + std::to_string(reference.config().vocab_size) + " tokens)");
  if (tokens.empty()) throw Error("compare: the text has no tokens");
  check_ids(model, tokens, "compare");
  const std::vector<int32_t> inputs = shifted_inputs(tokens);
  const size_t V = size_t(model.config().vocab_size);
  CompareResult r;
  State s_model = model.new_state(), s_ref = reference.new_state();
  std::vector<float> l_model, l_ref;
  const size_t step = size_t(std::max<int64_t>(batch, 1));
  for (size_t begin = 0; begin < inputs.size(); begin += step) {
    const auto chunk = std::span(inputs).subspan(begin, std::min(step, inputs.size() - begin));
    model.forward(chunk, s_model, l_model, true);
    reference.forward(chunk, s_ref, l_ref, true);
    for (size_t t = 0; t < chunk.size(); ++t) {
      const std::span<const float> m(l_model.data() + t * V, V), ref(l_ref.data() + t * V, V);
      const double kl = kl_divergence(ref, m);
      r.kl_sum += kl;
      r.kl_max = std::max(r.kl_max, kl);
      r.top1_agree += argmax_of(m) == argmax_of(ref) ? 1 : 0;
      const int32_t target = tokens[begin + t];
      r.model_ppl.nll_sum += token_nll(m, target);
      r.reference_ppl.nll_sum += token_nll(ref, target);
    }
  }
  r.positions = int64_t(inputs.size());
  r.model_ppl.tokens = r.reference_ppl.tokens = r.positions;
  return r;
}

WeightTraffic weight_traffic(const Model& model) {
  WeightTraffic w;
  const bool rwkv7 = model.config().arch == Arch::RWKV7;
  for (const TensorView& t : model.checkpoint().tensors()) {
    const int64_t bytes = int64_t(dtype_bytes(t.dtype, t.numel()));
    w.model_bytes += bytes;
    w.n_params += t.numel();
    if (t.name == "emb.weight") {
      w.bytes_per_token += t.shape.empty() ? 0 : bytes / std::max<int64_t>(t.shape.front(), 1);
      continue;
    }
    // The official code ignores layer 0's value-residual tensors.
    if (rwkv7 && (t.name == "blocks.0.att.v0" || t.name == "blocks.0.att.v1" || t.name == "blocks.0.att.v2"))
      continue;
    w.bytes_per_token += bytes;
  }
  w.bytes_per_token += model.packed_weight_bytes_delta();  // e.g. f32 LoRA factors read as bf16
  return w;
}

}  // namespace aviary
