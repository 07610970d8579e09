// ops::linear_many: several products shared out in one hand-off (ops/linear.h).
#include <algorithm>
#include <vector>

#include "ops/float_panels.h"
#include "ops/linear.h"
#include "ops/quant.h"
#include "ops/quant_dot.h"
#include "ops/quant_dot_vnni.h"
#include "ops/simd.h"
#include "ops/split.h"
#include "util/thread_pool.h"

namespace aviary::ops {

namespace {

// Below this much work (cost units below) a call runs on the calling thread.
constexpr int64_t kParallelCost = int64_t(1) << 19;
// Decode float panels per unit: for long rows a piece of a few panels runs the
// decode tile (several streams, more accumulators; float_panels.cpp runs rows
// of up to 4096 inputs one panel after another, a single stream). The
// VNNI decode kernel takes one panel at a time anyway: its units are single
// panels, so that the last pieces of a balanced split (util/thread_pool.h)
// are short and the threads finish together.
constexpr int64_t kDecodePanelsPerUnit = 4;

// Prefill products with more output rows than this run alone (linear()).
constexpr int64_t kMaxFusedPrefillRows = 256;

// Prefill rows per unit: up to 64 (enough to amortise interleaving a tile),
// fewer for short prompts, so that a few jobs of unequal size still split
// into enough units to share out evenly.
int64_t rows_per_unit(int64_t T) { return T == 1 ? 1 : std::clamp<int64_t>((T + 3) / 4, 16, 64); }

enum class Kind { Float, Vnni };

// One job cut into units: row blocks, each of `groups` groups of `per_group`
// panels; a unit costs its rows times the bytes of its panels (what a decode
// streams; in prefill, in proportion to its multiply-adds for one weight type).
struct Plan {
  Kind kind;
  const LinearJob* job;
  int64_t panels, per_group, groups, block;
  int64_t group_bytes;      // bytes of one group's panels
  const int8_t* x8 = nullptr;  // Vnni: activations narrowed, their corrections and scales
  const int32_t* corr = nullptr;
  const float* xd = nullptr;
};

Plan plan_for(const LinearJob& j, Kind kind) {
  const Matrix& W = *j.W;
  Plan p{kind, &j, 0, 0, 0, rows_per_unit(j.T), 0};
  const int64_t rows_per_panel = kind == Kind::Float ? int64_t(float_panels::kRows) : int64_t(vnni::kPanelRows);
  p.panels = (W.rows + rows_per_panel - 1) / rows_per_panel;
  // Prefill units take all of a job's panels: a kernel call lays out its
  // activation rows once for every panel it is given.
  p.per_group = j.T != 1 ? std::max<int64_t>(1, p.panels) : kind == Kind::Vnni ? 1 : kDecodePanelsPerUnit;
  p.groups = (p.panels + p.per_group - 1) / p.per_group;
  const DType stored = kind == Kind::Float ? float_panels::panel_dtype(W) : W.dtype;  // what is streamed
  p.group_bytes = p.per_group * int64_t(dtype_bytes(stored, rows_per_panel * W.cols));
  return p;
}

// The products' activations for the VNNI panels, one after another in the
// calling thread's buffers (vnni::panel_activations).
void prepare_vnni(std::vector<Plan>& plans) {
  int64_t values = 0;
  for (const Plan& p : plans)
    if (p.kind == Kind::Vnni) values += p.job->T * p.job->W->cols;
  if (values == 0) return;
  const vnni::PanelActivations a = vnni::panel_activations(size_t(values), true);
  int64_t vo = 0;
  for (Plan& p : plans) {
    if (p.kind != Kind::Vnni) continue;
    const LinearJob& j = *p.job;
    const int64_t n = j.T * j.W->cols, bo = vo / quant::kGroupElems;
    vnni::quantize_for_panels(j.x, size_t(j.T), size_t(j.W->cols), j.W->dtype, a.x8 + vo, a.corr + bo, a.xd + bo);
    p.x8 = a.x8 + vo;
    p.corr = a.corr + bo;
    p.xd = a.xd + bo;
    vo += n;
  }
}

// Runs the units of `plans` whose cost starts in [begin, end).
void run_units(std::span<const Plan> plans, int64_t begin, int64_t end) {
  int64_t base = 0;
  for (const Plan& p : plans) {
    const LinearJob& j = *p.job;
    const int64_t in = j.W->cols, out = j.W->rows, blocks_per_row = in / quant::kGroupElems;
    for (int64_t t0 = 0; t0 < j.T; t0 += p.block) {
      const int64_t rows = std::min(p.block, j.T - t0), unit = rows * p.group_bytes;
      // Groups with base + index * unit in [begin, end).
      auto first_at = [&](int64_t at) { return std::clamp((at - base + unit - 1) / unit, int64_t(0), p.groups); };
      const int64_t p0 = first_at(begin) * p.per_group, p1 = std::min(first_at(end) * p.per_group, p.panels);
      base += p.groups * unit;
      if (p0 >= p1) continue;
      if (p.kind == Kind::Float)
        float_panels::rows(j.x + t0 * in, rows, *j.W, size_t(p0), size_t(p1), j.y + t0 * out);
      else
        vnni::packed_rows(p.x8 + t0 * in, p.corr + t0 * blocks_per_row, p.xd + t0 * blocks_per_row, size_t(rows),
                          *j.W, size_t(p0), size_t(p1), j.y + t0 * out);
    }
  }
}

}  // namespace

void linear_many(std::span<const LinearJob> jobs) {
  for (const LinearJob& j : jobs) check_whole_blocks(j.W->dtype, j.W->cols, "linear: weight row");
  // Products in panels share one hand-off: float panels always, VNNI panels
  // in decode (a prefill's integer tiles take their own hand-off, in linear()).
  thread_local std::vector<Plan> plans;
  plans.clear();
  bool decode = true;
  for (const LinearJob& j : jobs) decode = decode && j.T == 1;
  const bool simd = !detail::use_reference();
  for (const LinearJob& j : jobs) {
    if (j.T <= 0 || j.W->rows <= 0) continue;
    const bool quantized = dtype_is_quantized(j.W->dtype);
    // A large prefill product shares out its own panels over all its rows
    // (each panel read once): alone, through linear().
    const bool small = decode || j.W->rows <= kMaxFusedPrefillRows;
    if (simd && small && j.W->packed && !quantized && float_panels::runs())
      plans.push_back(plan_for(j, Kind::Float));
    else if (simd && decode && j.W->packed && uses_q8_activations(j.W->dtype) && vnni::enabled())
      plans.push_back(plan_for(j, Kind::Vnni));
    else
      linear(j.x, j.T, *j.W, j.y);
  }
  if (plans.empty()) return;
  prepare_vnni(plans);
  int64_t total = 0;
  for (const Plan& p : plans) total += p.job->T * p.groups * p.group_bytes;
  const std::span<const Plan> all(plans);
  if (total < kParallelCost) return run_units(all, 0, total);
  default_pool().parallel_for(
      total, [&](int64_t begin, int64_t end) { run_units(all, begin, end); }, decode ? Split::Balanced : Split::Static);
}

}  // namespace aviary::ops
