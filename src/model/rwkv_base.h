// The skeleton every RWKV generation shares: embedding + ln0, then per layer
// ln1 -> time mix -> residual, ln2 -> channel mix -> residual, then ln_out and
// the head. A version supplies only its time mix, channel mix and state.
#pragma once

#include <deque>
#include <vector>

#include "model/blocks.h"
#include "model/model.h"
#include "model/weights.h"

namespace aviary {

// Workspace slots used by the skeleton; versions number theirs from kFirstVersionSlot.
enum SharedSlot : size_t { kSlotX, kSlotXln, kSlotPrev, kSlotOut, kFirstVersionSlot };

class RwkvModel : public Model {
 protected:
  RwkvModel(Checkpoint ckpt, ModelConfig config);

  // Reads the tensors every version has (emb, ln0, ln1/ln2 per layer, ln_out, head).
  void load_shared(WeightReader& r);

  void forward_pass(const ForwardPass& pass) const final;

  // Each reads the normalised input from kSlotXln ([T, C], T = total_rows(segments))
  // and adds its output to the residual stream in kSlotX; token shift and the
  // recurrence advance each segment's own state.
  virtual void time_mix(int64_t layer, std::span<const Segment> segments, Workspace& ws) const = 0;
  // The channel mix adds its output only to the rows of `out` (all but in
  // the last layer, whose other rows no head reads); a version may compute
  // more, not fewer.
  virtual void channel_mix(int64_t layer, std::span<const Segment> segments, const OutputRows& out,
                           Workspace& ws) const = 0;

  // A state of `per_layer` tensors for every layer, named blocks.N.<name>.
  State layered_state(const std::vector<StateTensor>& per_layer) const;
  // The RWKV-5.2/6/7 state: att.x_prev [C], att.wkv_state [H, N, N], ffn.x_prev [C]
  // per layer (how the WKV matrix is indexed is the version's business).
  State matrix_state() const;

  // Takes what `r` made while loading: the copies below, and how many bytes
  // the kernels' copies differ from the stored tensors by.
  void keep_weights(WeightReader& r);

  std::deque<PageBuffer> owned_;  // materialised non-contiguous tensors and the kernels' re-laid copies

 private:
  ops::Matrix emb_, head_;
  Norm ln0_, ln_out_;
  std::vector<Norm> ln1_, ln2_;
};

// Token mixing of RWKV-4/5: x * mix + prev * (1 - mix), the official form
// (RWKV-6/7 write it x + (prev - x) * mix: the same lerp, rounded differently).
enum class MixForm { Lerp, Shift };
void token_mix(MixForm form, const float* x, const float* prev, const float* mix, int64_t n, float* out);

// The RWKV-4/5/6 channel mix: sigmoid(r) * value(relu(key(xk))^2).
struct GatedChannelMix {
  MixForm form = MixForm::Lerp;
  std::vector<float> mix_k, mix_r;
  ops::Matrix key, receptance;  // [F, C], [C, C]
  FeedForwardValue value;       // [C, F] (model/blocks.h)

  // `prefix` is "blocks.N.ffn."; mix tensors are time_mix_* (Lerp) or time_maa_* (Shift).
  void load(WeightReader& r, const std::string& prefix, MixForm mix_form, int64_t C, int64_t F);
  // Reads kSlotXln, updates every segment's token-shift vector (tensor
  // `state_tensor` of its state), adds to the `rows` of kSlotX. Returns the
  // value matrix's bytes not read (FeedForwardValue::apply).
  int64_t run(std::span<const Segment> segments, size_t state_tensor, const OutputRows& rows, Workspace& ws,
           size_t first_slot) const;
};

}  // namespace aviary
