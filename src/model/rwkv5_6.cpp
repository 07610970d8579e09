#include "model/rwkv5_6.h"

#include <algorithm>
#include <cmath>

#include "model/rwkv_base.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/wkv5.h"

namespace aviary {
namespace {

constexpr float kGroupNormEps = 64e-5f;  // ln_x eps of the official x052/x060 code

// The five token-shift targets, in the order of RWKV-6's time_maa_w2 slices.
enum Target { kTw, kTk, kTv, kTr, kTg, kTargets };

struct TimeMix56 {
  // Token-shift mixes per target: time_mix_* (v5, no w) or time_maa_* (v6).
  std::vector<float> mix[kTargets];
  // RWKV-6 only: the data-dependent mix and decay LoRAs.
  std::vector<float> maa_x;
  ops::Matrix maa_w1, decay_w1, decay_w2;  // [C, 5D], [C, Dd], [Dd, C]
  std::vector<ops::Matrix> maa_w2;         // 5 x [D, C]
  std::vector<float> decay;  // v5: exp(-exp(time_decay)) [C]; v6: time_decay, before the LoRA
  std::vector<float> bonus;  // time_faaaa [H * N]
  ops::Matrix receptance, key, value, gate, output;
  Norm ln_x;
};

enum Slot : size_t {
  kDx = kFirstVersionSlot, kXw, kXk, kXv, kXr, kXg, kLora, kLoraPart, kMix, kR, kK, kV, kG, kW, kY, kFfnSlots
};
enum StateIndex : size_t { kAttPrev, kWkv, kFfnPrev, kPerLayer };

class Rwkv5_6 final : public RwkvModel {
 public:
  Rwkv5_6(Checkpoint ckpt, ModelConfig config) : RwkvModel(std::move(ckpt), std::move(config)) { load(); }

  // S is [H, N, N] indexed [key][value]: the transpose of RWKV-7's.
  State new_state() const override { return matrix_state(); }

 protected:
  void time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const override;
  void channel_mix(int64_t li, std::span<const Segment> segments, const OutputRows& rows,
                   Workspace& ws) const override {
    count_skipped_weight_bytes(ffn_[size_t(li)].run(segments, size_t(li) * kPerLayer + kFfnPrev, rows, ws, kFfnSlots));
  }

 private:
  bool v6() const { return config().arch == Arch::RWKV6; }
  void load();
  void load_v5_mixes(WeightReader& r, const std::string& a, TimeMix56& t) const;
  void load_v6_mixes(WeightReader& r, const std::string& a, TimeMix56& t) const;
  // The token-shifted inputs of the five targets, in slots kXw..kXg.
  void shifted_inputs(const TimeMix56& p, int64_t T, const float* xln, const float* prev, Workspace& ws) const;
  // The per-token decay in (0, 1) (v6), or nullptr when it is the static p.decay (v5).
  const float* dynamic_decay(const TimeMix56& p, int64_t T, Workspace& ws) const;

  std::vector<TimeMix56> att_;
  std::vector<GatedChannelMix> ffn_;
};

void Rwkv5_6::load_v5_mixes(WeightReader& r, const std::string& a, TimeMix56& t) const {
  const int64_t C = config().n_embd;
  t.mix[kTk] = r.vector(a + "time_mix_k", {C});
  t.mix[kTv] = r.vector(a + "time_mix_v", {C});
  t.mix[kTr] = r.vector(a + "time_mix_r", {C});
  t.mix[kTg] = r.vector(a + "time_mix_g", {C});
  t.decay = r.vector(a + "time_decay", {config().n_head, config().head_size});
  for (float& d : t.decay) d = std::exp(-std::exp(d));
}

void Rwkv5_6::load_v6_mixes(WeightReader& r, const std::string& a, TimeMix56& t) const {
  const int64_t C = config().n_embd, D = config().lora_mix, Dd = config().lora_decay;
  const char* names[kTargets] = {"w", "k", "v", "r", "g"};
  for (int i = 0; i < kTargets; ++i) t.mix[i] = r.vector(a + "time_maa_" + names[i], {C});
  t.maa_x = r.vector(a + "time_maa_x", {C});
  t.maa_w1 = r.matrix(a + "time_maa_w1", C, kTargets * D);
  t.maa_w2 = r.matrices(a + "time_maa_w2", kTargets, D, C);
  t.decay = r.vector(a + "time_decay", {C});
  t.decay_w1 = r.matrix(a + "time_decay_w1", C, Dd);
  t.decay_w2 = r.matrix(a + "time_decay_w2", Dd, C);
}

void Rwkv5_6::load() {
  const auto& c = config();
  const int64_t C = c.n_embd, F = c.ffn_dim;
  WeightReader r(checkpoint());
  load_shared(r);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".", a = b + "att.";
    TimeMix56 t;
    if (v6()) load_v6_mixes(r, a, t);
    else load_v5_mixes(r, a, t);
    t.bonus = r.vector(a + "time_faaaa", {c.n_head, c.head_size});
    t.receptance = r.projection(a + "receptance.weight", C, C);
    t.key = r.projection(a + "key.weight", C, C);
    t.value = r.projection(a + "value.weight", C, C);
    t.gate = r.projection(a + "gate.weight", C, C);
    t.output = r.projection(a + "output.weight", C, C);
    t.ln_x = Norm{r.vector(a + "ln_x.weight", {C}), r.vector(a + "ln_x.bias", {C})};
    att_.push_back(std::move(t));
    ffn_.emplace_back().load(r, b + "ffn.", v6() ? MixForm::Shift : MixForm::Lerp, C, F);
  }
  keep_weights(r);
}

void Rwkv5_6::shifted_inputs(const TimeMix56& p, int64_t T, const float* xln, const float* prev,
                             Workspace& ws) const {
  const int64_t C = config().n_embd, TC = T * C;
  float* x[kTargets] = {ws.get(kXw, size_t(TC)), ws.get(kXk, size_t(TC)), ws.get(kXv, size_t(TC)),
                        ws.get(kXr, size_t(TC)), ws.get(kXg, size_t(TC))};
  if (!v6()) {
    for (int i = kTk; i < kTargets; ++i)
      for (int64_t t = 0; t < T; ++t)
        token_mix(MixForm::Lerp, xln + t * C, prev + t * C, p.mix[i].data(), C, x[i] + t * C);
    return;
  }
  // RWKV-6: dx = prev - x; each target's mix is maa_i + LoRA_i(tanh((x + dx*maa_x) @ w1)).
  const int64_t D = config().lora_mix;
  float* dx = ws.get(kDx, size_t(TC));
  float* xx = ws.get(kMix, size_t(TC));
  for (int64_t j = 0; j < TC; ++j) {
    dx[j] = prev[j] - xln[j];
    xx[j] = xln[j] + dx[j] * p.maa_x[size_t(j % C)];
  }
  float* lora = ws.get(kLora, size_t(T * kTargets * D));
  ops::linear_in_out(xx, T, p.maa_w1, lora);
  ops::tanh_inplace(lora, T * kTargets * D);
  float* part = ws.get(kLoraPart, size_t(T * D));
  for (int i = 0; i < kTargets; ++i) {
    for (int64_t t = 0; t < T; ++t)
      std::copy_n(lora + (t * kTargets + i) * D, D, part + t * D);
    ops::linear_in_out(part, T, p.maa_w2[size_t(i)], xx);  // xx now holds target i's LoRA term
    for (int64_t j = 0; j < TC; ++j) x[i][j] = xln[j] + dx[j] * (p.mix[i][size_t(j % C)] + xx[j]);
  }
}

const float* Rwkv5_6::dynamic_decay(const TimeMix56& p, int64_t T, Workspace& ws) const {
  if (!v6()) return nullptr;
  const int64_t C = config().n_embd, TC = T * C;
  float* tmp = ws.get(kLora, size_t(T * config().lora_decay));
  float* w = ws.get(kW, size_t(TC));
  ops::linear_in_out(ws.get(kXw, size_t(TC)), T, p.decay_w1, tmp);
  ops::tanh_inplace(tmp, T * config().lora_decay);
  ops::linear_in_out(tmp, T, p.decay_w2, w);
  for (int64_t j = 0; j < TC; ++j) w[j] = std::exp(-std::exp(p.decay[size_t(j % C)] + w[j]));
  return w;
}

void Rwkv5_6::time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const {
  const auto& c = config();
  const int64_t T = total_rows(segments), C = c.n_embd, H = c.n_head, N = c.head_size, TC = T * C;
  const size_t base = size_t(li) * kPerLayer;
  const TimeMix56& p = att_[size_t(li)];
  const float* xln = ws.get(kSlotXln, size_t(TC));
  float* prev = ws.get(kSlotPrev, size_t(TC));
  shift_tokens(xln, C, segments, base + kAttPrev, prev);
  shifted_inputs(p, T, xln, prev, ws);

  float *r = ws.get(kR, size_t(TC)), *k = ws.get(kK, size_t(TC)), *v = ws.get(kV, size_t(TC)),
        *g = ws.get(kG, size_t(TC)), *y = ws.get(kY, size_t(TC));
  ops::linear(ws.get(kXr, size_t(TC)), T, p.receptance, r);
  ops::linear(ws.get(kXk, size_t(TC)), T, p.key, k);
  ops::linear(ws.get(kXv, size_t(TC)), T, p.value, v);
  ops::linear(ws.get(kXg, size_t(TC)), T, p.gate, g);
  for (int64_t j = 0; j < TC; ++j) g[j] = g[j] * ops::sigmoid(g[j]);  // SiLU

  const float* w = dynamic_decay(p, T, ws);
  for_each_segment(segments, H * N * N, [&](const Segment& s) {
    const int64_t o = s.first_row * C;
    ops::wkv5_sequence(s.state->tensor(base + kWkv).data(), H, N, s.n_rows(), r + o, k + o, v + o,
                       w ? w + o : p.decay.data(), w ? C : 0, p.bonus.data(), y + o);
  });
  for (int64_t t = 0; t < T; ++t)
    ops::group_norm(y + t * C, H, N, p.ln_x.w.data(), p.ln_x.b.data(), kGroupNormEps, y + t * C);
  ops::mul_inplace(y, g, TC);
  float* out = ws.get(kSlotOut, size_t(TC));
  ops::linear(y, T, p.output, out);
  ops::add_inplace(ws.get(kSlotX, size_t(TC)), out, TC);
}

}  // namespace

std::unique_ptr<Model> make_rwkv5_6(Checkpoint ckpt, ModelConfig config) {
  return std::make_unique<Rwkv5_6>(std::move(ckpt), std::move(config));
}

}  // namespace aviary
