#pragma once
// The FLAS flow over one training batch as an ode::DifferentiableField, so that the ODE core's Direct
// and Checkpointed strategies carry gradients through the Euler steps (ode/solve.hpp):
//   f(h, t, ctx, v)                       v = flow velocity of the batch at the row times t
//   vjp(h, t, ctx, ∂v, ∂h, ∂t)            ∂h written; ∂θ accumulated into the gradient target
//   for_each_parameter(visit)             (name, weight, gradient) of every flow parameter
//
// Activations: with keep_tapes, every forward evaluation keeps its tape (flow_tape.hpp) by evaluation
// slot and the VJP of that slot uses it (the Direct strategy: no recomputation); without, the VJP
// recomputes the evaluation from h (what Checkpointed wants: only states are stored). A kept tape is
// used only if it was recorded from the very state the VJP is asked about; otherwise it recomputes.
//
// Two things the ODE core does not carry are handled here:
//   - extra cotangents on one evaluation's output (add_cotangent): a loss term on v itself, such as
//     FLAS's diversity loss on the last Euler step's velocity, joins that slot's ∂v inside its VJP;
//   - the concept-side conditioning, shared by every evaluation: its cotangents are gathered over all
//     VJPs and turned into parameter gradients by finish(), once, after the solve's backward.
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flas/core/backward.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/field_concepts.hpp"
#include "flas/train/flow_backward.hpp"

namespace flas::train {

template <TrainableBackend B>
class FlowOdeField {
 public:
  using parameter_type = Tensor;
  // Tapes live per evaluation slot, and backsolve would evaluate states the forward pass never saw.
  static constexpr bool needs_fixed_slots = true;
  // ∂v/∂t is never needed by fixed-step FLAS training (only dopri5's first-step rule asks for it).
  static constexpr bool provides_time_vjp = false;

  // grads: gradient target in B::activation_dtype, shaped like flow.weights() (nullptr: forward only).
  FlowOdeField(const field::FlasFlow<B>& flow, const ConditioningTape<B>& cond, const BatchLayout& at,
               const Tensor& inv_freq, field::FlowWeights* grads, bool keep_tapes)
      : flow_(flow), cond_(cond), at_(at), inv_freq_(inv_freq), grads_(grads), keep_(keep_tapes && grads) {
    if (grads_) cond_cot_ = zero_conditioning_cotangents(cond_);
  }

  void operator()(const Tensor& h, ode::RowTimes t, const ode::EvalContext& ctx, Tensor& v) {
    const std::vector<float> times = row_times(t, h);
    if (keep_) {
      Kept& k = kept_[ctx.slot()];
      meter_remove(k.tape.bytes());  // a re-evaluated slot replaces its tape
      B::copy(v, flow_velocity<B>(flow_, cond_, h, times, at_, inv_freq_, &k.tape));
      k.state = h.raw();
      meter_add(k.tape.bytes());
    } else {
      B::copy(v, flow_velocity<B>(flow_, cond_, h, times, at_, inv_freq_));
    }
  }

  void vjp(const Tensor& h, ode::RowTimes t, const ode::EvalContext& ctx, const Tensor& cot_v, Tensor& cot_h,
           std::span<double> cot_t) {
    FLAS_CHECK(grads_, "FlowOdeField: vjp without a gradient target");
    FLAS_CHECK(cot_t.empty(), "FlowOdeField: the FLAS flow does not provide ∂v/∂t (provides_time_vjp = false)");
    const std::int64_t slot = ctx.slot();
    Tensor cot = cot_v;
    if (auto e = extra_.find(slot); e != extra_.end()) {
      cot = copy_of<B>(cot_v);
      B::add(cot, e->second);
    }
    const auto k = kept_.find(slot);
    if (k != kept_.end() && k->second.state == h.raw() && k->second.tape.t == row_times(t, h)) {
      flow_velocity_backward<B>(flow_, cond_, k->second.tape, at_, inv_freq_, cot, cot_h, *grads_, cond_cot_);
      return;
    }
    FlowTape<B> tape;  // recompute this evaluation, keeping its tape only while its VJP runs
    flow_velocity<B>(flow_, cond_, h, row_times(t, h), at_, inv_freq_, &tape);
    meter_add(tape.bytes());
    flow_velocity_backward<B>(flow_, cond_, tape, at_, inv_freq_, cot, cot_h, *grads_, cond_cot_);
    meter_remove(tape.bytes());
  }

  template <class Visit>
  void for_each_parameter(Visit&& visit) {
    FLAS_CHECK(grads_, "FlowOdeField: parameters visited without a gradient target");
    std::vector<std::pair<std::string, Tensor*>> weights, grads;
    field::FlowWeights w = flow_.weights();  // handles: the visitor sees the flow's own tensors
    field::for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) { weights.emplace_back(name, &t); });
    field::for_each_flow_parameter(*grads_, [&](const std::string& name, Tensor& t) { grads.emplace_back(name, &t); });
    FLAS_CHECK(weights.size() == grads.size(), "FlowOdeField: the gradient target does not match the flow");
    for (std::size_t i = 0; i < weights.size(); ++i)
      visit(std::string_view(weights[i].first), *weights[i].second, *grads[i].second);
  }

  // ∂L/∂v of evaluation `slot` from a loss term on v itself; added to the cotangent that slot's VJP gets.
  void add_cotangent(std::int64_t slot, Tensor cot) {
    auto [it, fresh] = extra_.try_emplace(slot, std::move(cot));
    if (!fresh) B::add(it->second, cot);
  }

  // After the solve's backward: the conditioning's parameter gradients, once per batch.
  void finish() {
    FLAS_CHECK(grads_, "FlowOdeField: finish without a gradient target");
    conditioning_backward<B>(flow_, cond_, cond_cot_, inv_freq_, *grads_);
  }

  // Peak bytes of activation tapes held at once (kept tapes, or the one being recomputed).
  std::size_t tape_bytes_peak() const { return peak_; }

 private:
  struct Kept {
    const void* state = nullptr;  // storage of the h the tape was recorded from
    FlowTape<B> tape;
  };

  static std::vector<float> row_times(ode::RowTimes t, const Tensor& h) {
    std::vector<float> out(std::size_t(h.dim(0)));
    for (std::size_t b = 0; b < out.size(); ++b) out[b] = float(t[b]);
    return out;
  }
  void meter_add(std::size_t b) { current_ += b, peak_ = std::max(peak_, current_); }
  void meter_remove(std::size_t b) { current_ -= std::min(b, current_); }

  const field::FlasFlow<B>& flow_;
  const ConditioningTape<B>& cond_;
  const BatchLayout& at_;
  const Tensor& inv_freq_;
  field::FlowWeights* grads_;
  bool keep_;
  ConditioningCotangents<B> cond_cot_;
  std::map<std::int64_t, Kept> kept_;
  std::map<std::int64_t, Tensor> extra_;
  std::size_t current_ = 0, peak_ = 0;
};

}  // namespace flas::train
