#pragma once
// The reverse pass shared by direct and checkpointed: it walks recorded steps backwards through their
// stage inputs (held in a StageTape), injecting the cotangents of the outputs that fall inside each step,
// and carrying ∂L/∂y (and, for FSAL methods, ∂L/∂k_0 into the step before). finish() closes the pass at
// the initial state: outputs at y0 itself, the first-step rule (dopri5 direct mode) and the initial
// evaluation f0 = f(t0, y0) of an FSAL method.
#include <cstdint>
#include <span>
#include <vector>

#include "flas/ode/first_step_vjp.hpp"
#include "flas/ode/forward_pass.hpp"
#include "flas/ode/rk_backward.hpp"
#include "flas/ode/strategies/stage_tape.hpp"

namespace flas::ode {

// Whether direct-style gradients differentiate dopri5's first step (torchdiffeq semantics): only for a
// selected first step on a shared clock, with RMS norms and a field that differentiates in t.
template <class Method, class Field, class State, class Clock, class Schedule>
bool first_step_gradient_wanted(const Schedule& schedule) {
  if constexpr (is_adaptive<Method> && !Clock::per_row && provides_time_vjp<Field>() && ops::has_rms_norms<State>)
    return schedule.differentiate_first_step && schedule.first_step == 0;
  else
    return false;
}

template <class Method, class Field, class State, class Clock, class Schedule>
class ReverseSweep {
 public:
  using Pass = ForwardPass<Method, Field, State, Clock, Schedule>;
  using Tape = StageTape<Method, State>;
  static constexpr int S = Method::tableau.stages;
  static constexpr bool fsal = Method::tableau.fsal;

  ReverseSweep(Pass& pass, RkStepBackward<Method, State>& bw, const State& like, std::span<const State> cot_out,
               bool delta_wanted)
      : pass_(pass), bw_(bw), cot_out_(cot_out), cot_y_(ops::zeros_like(like)), cot_k_(ops::zeros_like(like)) {
    const auto& rec = pass.rec;
    delta_ = delta_wanted && rec.first.selected && rec.first.first_attempt_accepted && !rec.steps.empty();
    in_step_.assign(rec.steps.size(), {});
    for (std::size_t j = 0; j < rec.outputs.size() && j < cot_out.size(); ++j) {
      const std::int64_t s = rec.outputs[j].step;
      if (s >= 0) in_step_[std::size_t(s)].push_back(j);
    }
  }

  // Backpropagates steps [a, b) whose stage inputs the tape holds.
  void sweep(Tape& tape, std::int64_t a, std::int64_t b) {
    std::vector<OutputCotangent<State>> outs;
    for (std::int64_t k = b - 1; k >= a; --k) {
      outs.clear();
      for (std::size_t j : in_step_[std::size_t(k)])
        outs.push_back({&cot_out_[j], pass_.rec.outputs[j].x});
      const auto Y = tape.inputs(k);
      const StepTimes st = pass_.step_times(k);
      DeltaArgs<State> d;
      if (delta_) {
        d.role = k == 0 ? DeltaRole::first_step : DeltaRole::later_step;
        d.k = tape.derivatives(k);
        d.cot = &cot_delta_;
        FLAS_CHECK(d.k.size() == std::size_t(S) || (d.role == DeltaRole::later_step && outs.empty()),
                   "ode: internal: stage derivatives of step ", k, " were not kept");
      }
      vjps_ += bw_.run(pass_.field, std::span<const State* const>(Y.data(), Y.size()), st, pass_.clock,
                       pass_.context(k, EvalPhase::forward), cot_y_, fsal ? &cot_k_ : nullptr, cot_k_zero_,
                       std::span<const OutputCotangent<State>>(outs), d);
      if constexpr (fsal) cot_k_zero_ = false;
    }
  }

  // ∂L/∂y0, once every step has been swept. `tape` holds step 0 (for the first-step gradient).
  State finish(const State& y0, Tape& tape) {
    const auto& rec = pass_.rec;
    for (std::size_t j = 0; j < rec.outputs.size() && j < cot_out_.size(); ++j)
      if (rec.outputs[j].step < 0) ops::axpy(cot_y_, 1.0, cot_out_[j]);
    const double t0 = pass_.ts.front();
    if constexpr (is_adaptive<Method>) {
      if (delta_ && cot_delta_ != 0) {
        const auto k0 = tape.derivatives(0);
        FLAS_CHECK(k0.size() == std::size_t(S) && tape.probe_input(), "ode: internal: first-step data missing");
        if (cot_k_zero_) ops::set_zero(cot_k_), cot_k_zero_ = false;
        const double dir = pass_.ts.back() >= pass_.ts.front() ? 1.0 : -1.0;
        first_step_vjp(pass_.field, cot_delta_, dir, rec.first, pass_.schedule, Method::tableau.order, y0, *k0[0],
                       *tape.probe_input(), *tape.probe_output(), t0, pass_.clock, S, cot_y_, cot_k_, vjps_);
      }
    }
    if constexpr (fsal) {
      if (!cot_k_zero_) {  // k_0 of the first step is f(t0, y0)
        State g = ops::empty_like(y0);
        const EvalContext ctx = pass_.context(0, EvalPhase::forward);
        pass_.field.vjp(y0, pass_.clock.at(t0), ctx, cot_k_, g, std::span<double>());
        ++vjps_;
        ops::axpy(cot_y_, 1.0, g);
      }
    }
    return std::move(cot_y_);
  }

  std::int64_t vjps() const { return vjps_; }

 private:
  Pass& pass_;
  RkStepBackward<Method, State>& bw_;
  std::span<const State> cot_out_;
  State cot_y_, cot_k_;
  bool cot_k_zero_ = true;
  bool delta_ = false;
  double cot_delta_ = 0;
  std::int64_t vjps_ = 0;
  std::vector<std::vector<std::size_t>> in_step_;
};

}  // namespace flas::ode
