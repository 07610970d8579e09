#include "model/rwkv7.h"

#include <algorithm>
#include <cmath>

#include "model/rwkv_base.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/wkv7.h"
#include "util/thread_pool.h"

namespace aviary {
namespace {

constexpr float kGroupNormEps = 64e-5f;  // ln_x eps of the official x070 code
constexpr float kNormalizeEps = 1e-12f;  // torch.nn.functional.normalize default
constexpr float kDecayScale = 0.606531f; // exp(-0.5), as the official CPU path writes it

struct TimeMix {
  std::vector<float> x_r, x_w, x_k, x_v, x_a, x_g;  // token-shift mixes [C]
  std::vector<float> w0, a0, v0, k_k, k_a, r_k;     // [C] (r_k is [H, N], flat)
  ops::Matrix w1, w2, a1, a2, v1, v2, g1, g2;       // LoRA factors, [out, in] as ops::linear takes them
  ops::Matrix receptance, key, value, output;       // [C, C], stored [out, in]
  Norm ln_x;
  bool value_residual = false;  // layers >= 1 mix in the first layer's values
};

struct ChannelMix {
  std::vector<float> x_k;
  ops::Matrix key;         // [F, C]
  FeedForwardValue value;  // [C, F] (model/blocks.h)
};

struct Layer {
  TimeMix att;
  ChannelMix ffn;
};

// State per layer (matrix_state()): token shift of the time mix, WKV matrix, token shift of the channel mix.
enum StateIndex : int64_t { kAttPrev, kWkv, kFfnPrev, kPerLayer };

// Scratch slots of the workspace, after the shared ones.
enum Slot : size_t {
  kX = kSlotX, kXln = kSlotXln, kPrev = kSlotPrev, kOut = kSlotOut,
  kXr = kFirstVersionSlot, kXw, kXk, kXv, kXa, kXg, kFfnXk,  // token-shift mixes: rotated in decode (mix_slot)
  kR, kW, kK, kV, kA, kG, kKK, kVFirst, kY, kLora, kFfn,
  kMixSets  // then the other sets of the mixes kXr .. kFfnXk
};

// Decode takes the token-shift mixes (the products' inputs) from one of
// kMixRotation sets of buffers, a different one each layer. The worker
// threads read them in the products (the LoRA downs and float matrices read
// them as they are), so writing the same lines in the next layer means first
// taking them back from those cores' caches: when the host puts the two
// threads on different dies, the time mix's six took 16 us a layer instead of
// 5-6 (1.5B Q4_0). Four layers later those copies are gone (7-9 us). A
// prefill chunk's [T, C] rows keep one set.
constexpr int64_t kMixRotation = 4;
size_t mix_slot(Slot first_set_slot, int64_t layer, int64_t T) {
  const int64_t set = T == 1 ? layer % kMixRotation : 0;
  if (set == 0) return first_set_slot;
  return size_t(kMixSets + (set - 1) * (kFfnXk - kXr + 1) + (first_set_slot - kXr));
}

class Rwkv7 final : public RwkvModel {
 public:
  Rwkv7(Checkpoint ckpt, ModelConfig config) : RwkvModel(std::move(ckpt), std::move(config)) { load(); }

  // The official x070 state: S is [H, N, N] indexed [value][key].
  State new_state() const override { return matrix_state(); }

 protected:
  void time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const override;
  void channel_mix(int64_t li, std::span<const Segment> segments, const OutputRows& rows,
                   Workspace& ws) const override;

 private:
  void load();

  std::vector<Layer> layers_;
};

void Rwkv7::load() {
  const auto& c = config();
  const int64_t C = c.n_embd, F = c.ffn_dim;
  WeightReader r(checkpoint());
  auto norm = [&](const std::string& p) { return Norm{r.vector(p + ".weight", {C}), r.vector(p + ".bias", {C})}; };
  load_shared(r);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    const std::string a = b + "att.";
    Layer L;
    TimeMix& t = L.att;
    for (auto [dst, name] : {std::pair{&t.x_r, "x_r"}, {&t.x_w, "x_w"}, {&t.x_k, "x_k"}, {&t.x_v, "x_v"},
                             {&t.x_a, "x_a"}, {&t.x_g, "x_g"}, {&t.w0, "w0"}, {&t.a0, "a0"},
                             {&t.k_k, "k_k"}, {&t.k_a, "k_a"}})
      *dst = r.vector(a + name, {C});
    t.r_k = r.vector(a + "r_k", {c.n_head, c.head_size});
    // LoRA ranks may differ per layer in released models: take each from its tensor.
    auto lora = [&](const std::string& n, ops::Matrix& down, ops::Matrix& up) {
      const int64_t rank = squeeze_leading(r.require(a + n + "1").shape).back();
      down = r.transposed_projection(a + n + "1", C, rank);
      up = r.transposed_projection(a + n + "2", rank, C);
    };
    lora("w", t.w1, t.w2);
    lora("a", t.a1, t.a2);
    lora("g", t.g1, t.g2);
    // Layer 0 takes no value residual: official files still carry its
    // v0/v1/v2 (the pip loader ignores them), so they are never read here.
    t.value_residual = i > 0;
    if (t.value_residual) {
      t.v0 = r.vector(a + "v0", {C});
      lora("v", t.v1, t.v2);
    }
    t.receptance = r.projection(a + "receptance.weight", C, C);
    t.key = r.projection(a + "key.weight", C, C);
    t.value = r.projection(a + "value.weight", C, C);
    t.output = r.projection(a + "output.weight", C, C);
    t.ln_x = norm(a + "ln_x");
    L.ffn.x_k = r.vector(b + "ffn.x_k", {C});
    L.ffn.key = r.projection(b + "ffn.key.weight", F, C);
    L.ffn.value = FeedForwardValue(r.projection(b + "ffn.value.weight", C, F));
    layers_.push_back(std::move(L));
  }
  keep_weights(r);
}

// The products of the time mix before the recurrence: receptance, key,
// value, and the LoRA paths out = up(act(down(x))) of the decay (tanh), the
// in-context learning rate (identity), the gate (sigmoid) and, past layer 0,
// the value residual (identity), as the official code has them. Everything
// that reads only the token-shifted inputs is one hand-out to the thread
// pool (ops::linear_many): each LoRA product alone is too small to share
// out, and decode streams all of a layer's weights at once. The ups come
// after the activations (lora_ups, or per head in decode).
struct TimeMixBuffers {
  const float *xr, *xk, *xv, *xw, *xa, *xg;  // token-shifted inputs [T, C]
  float *r, *k, *v, *w, *a, *g, *vmix;       // projections [T, C] (vmix: the value-residual gate)
  float *tw, *ta, *tg, *tv;                  // LoRA hidden activations [T, rank]
  float *kk, *v_first, *y;                   // [T, C]
};

void project_and_lora_downs(const TimeMix& p, int64_t T, const TimeMixBuffers& b) {
  const size_t loras = p.value_residual ? 4 : 3;
  const ops::LinearJob first[] = {{b.xr, T, &p.receptance, b.r}, {b.xk, T, &p.key, b.k},
                                  {b.xv, T, &p.value, b.v},      {b.xw, T, &p.w1, b.tw},
                                  {b.xa, T, &p.a1, b.ta},        {b.xg, T, &p.g1, b.tg},
                                  {b.xv, T, &p.v1, b.tv}};
  ops::linear_many(std::span(first, 3 + loras));
  ops::tanh_inplace(b.tw, T * p.w1.rows);
  ops::sigmoid_inplace(b.tg, T * p.g1.rows);
}

// The LoRA ups of every channel, in one hand-out.
void lora_ups(const TimeMix& p, int64_t T, const TimeMixBuffers& b) {
  const ops::LinearJob ups[] = {{b.tw, T, &p.w2, b.w}, {b.ta, T, &p.a2, b.a}, {b.tg, T, &p.g2, b.g},
                                {b.tv, T, &p.v2, b.vmix}};
  ops::linear_many(std::span(ups, p.value_residual ? 4 : 3));
}

// The LoRA ups of one token's channels [c0, c1) only.
void lora_ups_rows(const TimeMix& p, const TimeMixBuffers& b, int64_t c0, int64_t c1) {
  ops::linear_rows(b.tw, 1, p.w2, c0, c1, b.w);
  ops::linear_rows(b.ta, 1, p.a2, c0, c1, b.a);
  ops::linear_rows(b.tg, 1, p.g2, c0, c1, b.g);
  if (p.value_residual) ops::linear_rows(b.tv, 1, p.v2, c0, c1, b.vmix);
}

// Row t, channels [c0, c1) (whole heads of N): the decay w, the in-context
// rate a, the removal key kk (normalised per head), the key k, and the value
// with the first layer's mixed in (layer 0: keeps its values for the others).
// Three vectorised exp per channel.
void decay_rate_and_keys(const TimeMix& p, const TimeMixBuffers& b, int64_t C, int64_t N, int64_t t, int64_t c0,
                         int64_t c1) {
  const int64_t n = c1 - c0, o = t * C + c0;
  float *at = b.a + o, *wt = b.w + o, *kt = b.k + o, *kkt = b.kk + o, *vt = b.v + o;
  const float *k_k = p.k_k.data() + c0, *k_a = p.k_a.data() + c0;
  ops::add_inplace(at, p.a0.data() + c0, n);
  ops::sigmoid_inplace(at, n);
  ops::add_inplace(wt, p.w0.data() + c0, n);
  ops::sigmoid_inplace(wt, n);
  ops::exp_inplace(wt, -kDecayScale, n);
  for (int64_t i = 0; i < n; ++i) {
    kkt[i] = kt[i] * k_k[i];
    kt[i] = kt[i] * (1.f + (at[i] - 1.f) * k_a[i]);
  }
  if (p.value_residual) {
    float* gate = b.vmix + o;
    ops::add_inplace(gate, p.v0.data() + c0, n);
    ops::sigmoid_inplace(gate, n);
    ops::token_shift_mix(vt, b.v_first + o, gate, n, vt);  // v + (v_first - v) * gate
  } else {
    std::copy(vt, vt + n, b.v_first + o);
  }
  ops::l2_normalize_groups(kkt, n / N, N, kNormalizeEps, kkt);
}

// Row t, channels [c0, c1) (whole heads) of the WKV output y: GroupNorm per
// head, the per-head "bonus" (r . (k * r_k)) v (the current token's direct
// path), and the gate.
void norm_bonus_gate(const TimeMix& p, const TimeMixBuffers& b, int64_t C, int64_t N, int64_t t, int64_t c0,
                     int64_t c1) {
  const int64_t o = t * C + c0;
  float* y = b.y;
  ops::group_norm(y + o, (c1 - c0) / N, N, p.ln_x.w.data() + c0, p.ln_x.b.data() + c0, kGroupNormEps, y + o);
  for (int64_t h = c0 / N; h < c1 / N; ++h) {
    const int64_t hb = t * C + h * N;
    float s = 0;
    for (int64_t n = 0; n < N; ++n) s += b.r[hb + n] * b.k[hb + n] * p.r_k[size_t(h * N + n)];
    for (int64_t n = 0; n < N; ++n) y[hb + n] += s * b.v[hb + n];
  }
  ops::mul_inplace(y + o, b.g + o, c1 - c0);
}

void Rwkv7::time_mix(int64_t li, std::span<const Segment> segments, Workspace& ws) const {
  const auto& c = config();
  const int64_t T = total_rows(segments), C = c.n_embd, H = c.n_head, N = c.head_size, TC = T * C;
  const TimeMix& p = layers_[size_t(li)].att;
  const float* xln = ws.get(kXln, TC);
  float* prev = ws.get(kPrev, TC);
  shift_tokens(xln, C, segments, size_t(kAttPrev + kPerLayer * li), prev);

  auto mix_buffer = [&](Slot slot) { return ws.get(mix_slot(slot, li, T), TC); };
  float *xr = mix_buffer(kXr), *xw = mix_buffer(kXw), *xk = mix_buffer(kXk), *xv = mix_buffer(kXv),
        *xa = mix_buffer(kXa), *xg = mix_buffer(kXg);
  // A lone decode row mixes on this thread: the six mixes read and write
  // ~100 KB, and sharing them out saved nothing measurable (1.5B Q4_0, per
  // layer: 5-6 us shared against about 5 serial; 9-17 against 12-26 when the
  // host puts the two threads far apart, within the noise of those runs).
  parallel_rows(T, 6 * C, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t * C;
      ops::token_shift_mix(xln + o, prev + o, p.x_r.data(), C, xr + o);
      ops::token_shift_mix(xln + o, prev + o, p.x_w.data(), C, xw + o);
      ops::token_shift_mix(xln + o, prev + o, p.x_k.data(), C, xk + o);
      ops::token_shift_mix(xln + o, prev + o, p.x_v.data(), C, xv + o);
      ops::token_shift_mix(xln + o, prev + o, p.x_a.data(), C, xa + o);
      ops::token_shift_mix(xln + o, prev + o, p.x_g.data(), C, xg + o);
    }
  });

  const int64_t ranks = p.w1.rows + p.a1.rows + p.g1.rows + (p.value_residual ? p.v1.rows : 0);
  float* lora = ws.get(kLora, size_t(T * ranks));
  const TimeMixBuffers b{
      .xr = xr, .xk = xk, .xv = xv, .xw = xw, .xa = xa, .xg = xg,
      .r = ws.get(kR, TC), .k = ws.get(kK, TC), .v = ws.get(kV, TC), .w = ws.get(kW, TC), .a = ws.get(kA, TC),
      .g = ws.get(kG, TC),
      .vmix = xr,  // xr is consumed by the first hand-off: reused for the value-residual gate
      .tw = lora, .ta = lora + T * p.w1.rows, .tg = lora + T * (p.w1.rows + p.a1.rows),
      .tv = lora + T * (p.w1.rows + p.a1.rows + p.g1.rows),
      .kk = ws.get(kKK, TC), .v_first = ws.get(kVFirst, TC), .y = ws.get(kY, TC)};
  project_and_lora_downs(p, T, b);

  if (T == 1) {
    // Decode: from the LoRA ups to the gated output everything is per head,
    // so one hand-out takes a head's ups rows, its recurrence and its norm
    // together (four hand-outs otherwise, each with its wake-up and tail).
    // One block of heads per thread (Static): each thread then streams its
    // rows of the four ups in one go; the balanced split's small last pieces
    // cut those short streams shorter (1.5B Q4_0: the ups took 25% longer).
    float* S = segments.front().state->tensor(size_t(kWkv + kPerLayer * li)).data();
    default_pool().parallel_for(
        H,
        [&](int64_t h0, int64_t h1) {
          const int64_t c0 = h0 * N, c1 = h1 * N;
          lora_ups_rows(p, b, c0, c1);
          decay_rate_and_keys(p, b, C, N, 0, c0, c1);
          ops::wkv7_step_heads(S, H, N, b.r, b.w, b.k, b.v, b.kk, b.a, b.y, h0, h1);
          norm_bonus_gate(p, b, C, N, 0, c0, c1);
        },
        Split::Static);
  } else {
    lora_ups(p, T, b);
    parallel_rows(T, 16 * C, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) decay_rate_and_keys(p, b, C, N, t, 0, C);
    });
    for_each_segment(segments, H * N * N, [&](const Segment& s) {
      const int64_t o = s.first_row * C;
      ops::wkv7_sequence(s.state->tensor(size_t(kWkv + kPerLayer * li)).data(), H, N, s.n_rows(), b.r + o,
                         b.w + o, b.k + o, b.v + o, b.kk + o, b.a + o, b.y + o);
    });
    parallel_rows(T, 8 * C, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) norm_bonus_gate(p, b, C, N, t, 0, C);
    });
  }
  float* out = ws.get(kOut, TC);
  ops::linear(b.y, T, p.output, out);
  float* x = ws.get(kX, TC);
  parallel_rows(T, C, [&](int64_t t0, int64_t t1) { ops::add_inplace(x + t0 * C, out + t0 * C, (t1 - t0) * C); });
}

void Rwkv7::channel_mix(int64_t li, std::span<const Segment> segments, const OutputRows& rows,
                        Workspace& ws) const {
  const int64_t T = total_rows(segments), C = config().n_embd, F = config().ffn_dim, R = rows.count();
  const ChannelMix& p = layers_[size_t(li)].ffn;
  const float* xln = ws.get(kXln, T * C);
  float* prev = ws.get(kPrev, T * C);
  shift_tokens(xln, C, segments, size_t(kFfnPrev + kPerLayer * li), prev);
  if (R == 0) return;
  float* xk = ws.get(mix_slot(kFfnXk, li, R), size_t(R * C));
  parallel_rows(R, C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) ops::token_shift_mix(xln + rows[i] * C, prev + rows[i] * C, p.x_k.data(), C, xk + i * C);
  });
  float* h = ws.get(kFfn, size_t(R * F));
  ops::linear(xk, R, p.key, h);
  parallel_rows(R, F, [&](int64_t i0, int64_t i1) { ops::relu_squared_inplace(h + i0 * F, (i1 - i0) * F); });
  float* out = ws.get(kOut, R * C);
  count_skipped_weight_bytes(p.value.apply(h, rows.as_segments(segments), out));
  float* x = ws.get(kX, T * C);
  if (rows.is_all()) {
    parallel_rows(T, C, [&](int64_t t0, int64_t t1) { ops::add_inplace(x + t0 * C, out + t0 * C, (t1 - t0) * C); });
    return;
  }
  for (int64_t i = 0; i < R; ++i) ops::add_inplace(x + rows[i] * C, out + i * C, C);
}

}  // namespace

std::unique_ptr<Model> make_rwkv7(Checkpoint ckpt, ModelConfig config) {
  return std::make_unique<Rwkv7>(std::move(ckpt), std::move(config));
}

}  // namespace aviary
