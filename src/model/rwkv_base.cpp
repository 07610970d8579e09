#include "model/rwkv_base.h"

#include <algorithm>

#include "ops/elementwise.h"
#include "ops/linear.h"

namespace aviary {

RwkvModel::RwkvModel(Checkpoint ckpt, ModelConfig config) : Model(std::move(ckpt), std::move(config)) {}

void RwkvModel::keep_weights(WeightReader& r) {
  owned_ = r.take_owned();
  set_packed_weight_bytes_delta(r.packed_bytes_delta());
}

void RwkvModel::load_shared(WeightReader& r) {
  const auto& c = config();
  const int64_t C = c.n_embd;
  auto norm = [&](const std::string& p) { return Norm{r.vector(p + ".weight", {C}), r.vector(p + ".bias", {C})}; };
  emb_ = r.matrix("emb.weight", c.vocab_size, C);
  head_ = r.projection("head.weight", c.vocab_size, C);
  ln0_ = norm("blocks.0.ln0");
  ln_out_ = norm("ln_out");
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    ln1_.push_back(norm(b + "ln1"));
    ln2_.push_back(norm(b + "ln2"));
  }
}

State RwkvModel::layered_state(const std::vector<StateTensor>& per_layer) const {
  std::vector<StateTensor> t;
  for (int64_t i = 0; i < config().n_layer; ++i)
    for (StateTensor s : per_layer) {
      s.name = "blocks." + std::to_string(i) + "." + s.name;
      t.push_back(std::move(s));
    }
  return State(std::move(t));
}

State RwkvModel::matrix_state() const {
  const auto& c = config();
  return layered_state({{"att.x_prev", {c.n_embd}},
                        {"att.wkv_state", {c.n_head, c.head_size, c.head_size}},
                        {"ffn.x_prev", {c.n_embd}}});
}

void RwkvModel::forward_pass(const ForwardPass& pass) const {
  thread_local Workspace ws;
  const int64_t T = total_rows(pass.segments), C = config().n_embd;
  float* x = ws.get(kSlotX, size_t(T * C));
  embed_tokens(pass.segments, emb_, ln0_, x);
  // The last layer's outputs matter only where the head reads them (as
  // llama.cpp also does); a prefill chunk with no logits needs none.
  thread_local std::vector<int64_t> head_rows;
  head_rows.clear();
  for (const LogitsRow& l : pass.logits) head_rows.push_back(l.row);
  std::sort(head_rows.begin(), head_rows.end());
  head_rows.erase(std::unique(head_rows.begin(), head_rows.end()), head_rows.end());
  const OutputRows every = OutputRows::all(T);
  const OutputRows last = int64_t(head_rows.size()) == T ? every : OutputRows::only(T, head_rows);
  for (int64_t li = 0; li < config().n_layer; ++li) {
    layer_norm_rows(x, T, C, ln1_[size_t(li)], ws.get(kSlotXln, size_t(T * C)));
    time_mix(li, pass.segments, ws);
    layer_norm_rows(x, T, C, ln2_[size_t(li)], ws.get(kSlotXln, size_t(T * C)));
    channel_mix(li, pass.segments, li + 1 == config().n_layer ? last : every, ws);
  }
  thread_local std::vector<float> scratch;
  head_logits(x, C, pass.logits, ln_out_, head_, scratch);
}

void token_mix(MixForm form, const float* x, const float* prev, const float* mix, int64_t n, float* out) {
  if (form == MixForm::Shift) {
    ops::token_shift_mix(x, prev, mix, n, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * mix[i] + prev[i] * (1.f - mix[i]);
}

void GatedChannelMix::load(WeightReader& r, const std::string& prefix, MixForm mix_form, int64_t C, int64_t F) {
  form = mix_form;
  const std::string mix = form == MixForm::Lerp ? "time_mix_" : "time_maa_";
  mix_k = r.vector(prefix + mix + "k", {C});
  mix_r = r.vector(prefix + mix + "r", {C});
  key = r.projection(prefix + "key.weight", F, C);
  receptance = r.projection(prefix + "receptance.weight", C, C);
  value = FeedForwardValue(r.projection(prefix + "value.weight", C, F));
}

int64_t GatedChannelMix::run(std::span<const Segment> segments, size_t state_tensor, const OutputRows& rows,
                          Workspace& ws, size_t first_slot) const {
  const int64_t T = total_rows(segments), C = receptance.rows, F = key.rows, R = rows.count(), RC = R * C;
  const float* xln = ws.get(kSlotXln, size_t(T * C));
  float* prev = ws.get(kSlotPrev, size_t(T * C));
  shift_tokens(xln, C, segments, state_tensor, prev);
  if (R == 0) return 0;
  float *xk = ws.get(first_slot, size_t(RC)), *xr = ws.get(first_slot + 1, size_t(RC));
  for (int64_t i = 0; i < R; ++i) {
    const int64_t t = rows[i];
    token_mix(form, xln + t * C, prev + t * C, mix_k.data(), C, xk + i * C);
    token_mix(form, xln + t * C, prev + t * C, mix_r.data(), C, xr + i * C);
  }
  float* r = ws.get(first_slot + 2, size_t(RC));
  ops::linear(xr, R, receptance, r);
  ops::sigmoid_inplace(r, RC);
  float* h = ws.get(first_slot + 3, size_t(R * F));
  ops::linear(xk, R, key, h);
  ops::relu_squared_inplace(h, R * F);
  float* out = ws.get(kSlotOut, size_t(RC));
  const int64_t skipped = value.apply(h, rows.as_segments(segments), out);
  ops::mul_inplace(out, r, RC);
  float* x = ws.get(kSlotX, size_t(T * C));
  for (int64_t i = 0; i < R; ++i) ops::add_inplace(x + rows[i] * C, out + i * C, C);
  return skipped;
}

}  // namespace aviary
