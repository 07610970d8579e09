#include "model/rwkv4.h"

#include <cmath>

#include "model/rwkv_base.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/wkv4.h"

namespace aviary {
namespace {

struct TimeMix4 {
  std::vector<float> mix_k, mix_v, mix_r;
  std::vector<float> decay;  // -exp(time_decay), as the official loader stores it
  std::vector<float> first;  // time_first (the bonus of the current token)
  ops::Matrix key, value, receptance, output;
};

enum Slot : size_t { kXk = kFirstVersionSlot, kXv, kXr, kK, kV, kR, kY, kFfnSlots };

// State per layer, in the pip package's order: att.x_prev, aa, bb, pp, ffn.x_prev.
enum StateIndex : size_t { kAttPrev, kAA, kBB, kPP, kFfnPrev, kPerLayer };

class Rwkv4 final : public RwkvModel {
 public:
  Rwkv4(Checkpoint ckpt, ModelConfig config) : RwkvModel(std::move(ckpt), std::move(config)) { load(); }

  State new_state() const override {
    const int64_t C = config().n_embd;
    // pp starts at -1e30: "no history yet", so the first token's weight wins.
    return layered_state({{"att.x_prev", {C}}, {"att.aa", {C}}, {"att.bb", {C}},
                          {"att.pp", {C}, 0, 0, -1e30f}, {"ffn.x_prev", {C}}});
  }

 protected:
  void time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const override;
  void channel_mix(int64_t li, std::span<const Segment> segments, const OutputRows& rows,
                   Workspace& ws) const override {
    count_skipped_weight_bytes(ffn_[size_t(li)].run(segments, size_t(li) * kPerLayer + kFfnPrev, rows, ws, kFfnSlots));
  }

 private:
  void load();
  std::vector<TimeMix4> att_;
  std::vector<GatedChannelMix> ffn_;
};

void Rwkv4::load() {
  const int64_t C = config().n_embd, F = config().ffn_dim;
  WeightReader r(checkpoint());
  load_shared(r);
  for (int64_t i = 0; i < config().n_layer; ++i) {
    const std::string a = "blocks." + std::to_string(i) + ".att.";
    TimeMix4 t;
    t.mix_k = r.vector(a + "time_mix_k", {C});
    t.mix_v = r.vector(a + "time_mix_v", {C});
    t.mix_r = r.vector(a + "time_mix_r", {C});
    t.decay = r.vector(a + "time_decay", {C});
    for (float& d : t.decay) d = -std::exp(d);
    t.first = r.vector(a + "time_first", {C});
    t.key = r.projection(a + "key.weight", C, C);
    t.value = r.projection(a + "value.weight", C, C);
    t.receptance = r.projection(a + "receptance.weight", C, C);
    t.output = r.projection(a + "output.weight", C, C);
    att_.push_back(std::move(t));
    ffn_.emplace_back().load(r, "blocks." + std::to_string(i) + ".ffn.", MixForm::Lerp, C, F);
  }
  keep_weights(r);
}

void Rwkv4::time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const {
  const int64_t T = total_rows(segments), C = config().n_embd;
  const size_t TC = size_t(T * C), base = size_t(li) * kPerLayer;
  const TimeMix4& p = att_[size_t(li)];
  const float* xln = ws.get(kSlotXln, TC);
  float* prev = ws.get(kSlotPrev, TC);
  shift_tokens(xln, C, segments, base + kAttPrev, prev);
  float *xk = ws.get(kXk, TC), *xv = ws.get(kXv, TC), *xr = ws.get(kXr, TC);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t o = t * C;
    token_mix(MixForm::Lerp, xln + o, prev + o, p.mix_k.data(), C, xk + o);
    token_mix(MixForm::Lerp, xln + o, prev + o, p.mix_v.data(), C, xv + o);
    token_mix(MixForm::Lerp, xln + o, prev + o, p.mix_r.data(), C, xr + o);
  }
  float *k = ws.get(kK, TC), *v = ws.get(kV, TC), *r = ws.get(kR, TC), *y = ws.get(kY, TC);
  ops::linear(xk, T, p.key, k);
  ops::linear(xv, T, p.value, v);
  ops::linear(xr, T, p.receptance, r);
  ops::sigmoid_inplace(r, int64_t(TC));
  for_each_segment(segments, C, [&](const Segment& s) {
    State& st = *s.state;
    const int64_t o = s.first_row * C;
    ops::wkv4_sequence(st.tensor(base + kAA).data(), st.tensor(base + kBB).data(), st.tensor(base + kPP).data(),
                       C, s.n_rows(), p.decay.data(), p.first.data(), k + o, v + o, y + o);
  });
  ops::mul_inplace(y, r, int64_t(TC));
  float* out = ws.get(kSlotOut, TC);
  ops::linear(y, T, p.output, out);
  ops::add_inplace(ws.get(kSlotX, TC), out, int64_t(TC));
}

}  // namespace

std::unique_ptr<Model> make_rwkv4(Checkpoint ckpt, ModelConfig config) {
  return std::make_unique<Rwkv4>(std::move(ckpt), std::move(config));
}

}  // namespace aviary
