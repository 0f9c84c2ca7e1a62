#pragma once
// Backsolve: the continuous adjoint, as torchdiffeq's odeint_adjoint computes it (SPEC.md, ODE section).
// The forward pass keeps only the outputs. Backwards, the augmented state (a_t, y, a_y, a_θ) starts at
// (0, y(t_N), ∂L/∂y(t_N), 0) and is integrated over each interval between output times, t_N → t_{N−1}, ...,
// with the same method and step rule (a fixed grid per interval from its far end; dopri5 with the adjoint
// tolerances, a fresh first step and the mixed adjoint norm), under the dynamics
//   d/dt (a_t, y, a_y, a_θ) = (−a_y·∂f/∂t, f, −a_yᵀ ∂f/∂y, −a_yᵀ ∂f/∂θ);
// y is re-integrated backwards, not read from the forward pass. At each output time y is reset to the
// forward value and that output's cotangent is added to a_y. An approximation of the discrete gradient
// (4e-2 off for Euler on the fixture), with memory independent of the step count.
#include <memory>
#include <string_view>
#include <vector>

#include "flas/ode/adjoint_state.hpp"
#include "flas/ode/forward_pass.hpp"
#include "flas/ode/solution.hpp"

namespace flas::ode {

struct Backsolve {
  static constexpr bool differentiable = true;
  static constexpr const char* name = "backsolve";
};

// The augmented dynamics as a velocity field over AdjointState, in solver time. Under per-row time the
// rows' derivatives with respect to solver time carry the factor rate_b = T_b.
template <class Field, class State, class Clock>
class AdjointDynamics {
 public:
  using P = typename Field::parameter_type;
  using Aug = AdjointState<State, P>;

  AdjointDynamics(Field& f, Clock& clock, const State& like) : f_(f), clock_(clock), cot_(ops::empty_like(like)) {
    // Gradient buffers are taken once: they must stay where they are for the solve.
    f_.for_each_parameter([&](std::string_view, P&, P& grad) { grads_.push_back(&grad); });
  }

  void operator()(const Aug& z, RowTimes s, const EvalContext& ctx, Aug& dz) {
    const RowTimes t = Clock::per_row ? clock_.at(s.scalar()) : s;
    f_(z.y, t, ctx, dz.y);
    const double minus_one = -1.0;
    if constexpr (Clock::per_row) {
      neg_rate_.resize(clock_.rate().size());
      for (std::size_t b = 0; b < neg_rate_.size(); ++b) neg_rate_[b] = -clock_.rate()[b];
      ops::scale_sum(cot_, static_cast<const State*>(nullptr), RowValues(std::span<const double>(neg_rate_)), {1.0},
                     {&z.a_y});
    } else {
      ops::scale_sum(cot_, static_cast<const State*>(nullptr), RowValues(minus_one), {1.0}, {&z.a_y});
    }
    // The field accumulates parameter gradients into its own buffers (zero between evaluations): move
    // them into this evaluation's a_θ part.
    if constexpr (provides_time_vjp<Field>()) {  // a_t' = −a_y·∂f/∂t, summed over rows (per row: ·rate)
      cot_t_.resize(ops::rows(z.y));
      f_.vjp(z.y, t, ctx, cot_, dz.a_y, std::span<double>(cot_t_));
      dz.a_t = 0;
      for (std::size_t b = 0; b < cot_t_.size(); ++b) dz.a_t += cot_t_[b];
    } else {
      f_.vjp(z.y, t, ctx, cot_, dz.a_y, std::span<double>());
      dz.a_t = 0;
    }
    for (std::size_t i = 0; i < grads_.size(); ++i) {
      ops::copy(dz.a_theta[i], *grads_[i]);
      ops::set_zero(*grads_[i]);
    }
    if constexpr (Clock::per_row) ops::scale_sum(dz.y, static_cast<const State*>(nullptr), clock_.rate(), {1.0}, {&dz.y});
  }

 private:
  Field& f_;
  Clock& clock_;
  State cot_;
  std::vector<double> neg_rate_, cot_t_;
  std::vector<P*> grads_;
};

template <class Method, class Field, class State, class Clock, class Schedule>
class BacksolveBackward {
 public:
  using Pass = ForwardPass<Method, Field, State, Clock, Schedule>;
  using P = typename Field::parameter_type;
  using Aug = AdjointState<State, P>;

  BacksolveBackward(Field& f, const State& y0, Clock clock, std::vector<double> ts, Schedule schedule)
      : pass(f, y0, std::move(clock), std::move(ts), schedule), pp_(y0) {}

  template <class Observer>
  void forward(const State& y0, Observer& obs, std::vector<State>& outputs) {
    pass.forward(y0, pp_, obs, &outputs);
    // The forward values y is reset to at each output time.
    for (const State& y : outputs) {
      ys_.push_back(ops::empty_like(y));
      ops::copy(ys_.back(), y);
      meter.add(ops::bytes(y));
    }
  }

  State backward(std::span<const State> cot, SolveStats& stats) {
    Field& f = pass.field;
    const std::vector<State>& ys = ys_;
    const std::size_t n = ys.size();
    // Stash the field's gradients: its buffers serve as scratch for each evaluation's a_θ.
    std::vector<P> stash;
    Aug z{0.0, ops::empty_like(ys.back()), ops::empty_like(ys.back()), {}};
    f.for_each_parameter([&](std::string_view, P&, P& grad) {
      stash.push_back(ops::empty_like(grad));
      ops::copy(stash.back(), grad);
      ops::set_zero(grad);
      z.a_theta.push_back(ops::zeros_like(grad));
    });
    ops::copy(z.y, ys.back());
    ops::copy(z.a_y, cot[n - 1]);
    AdjointDynamics<Field, State, Clock> dyn(f, pass.clock, ys.back());
    RkStepper<Method, Aug> stepper(z);
    PingPongSink<Aug> sink(z);
    Aug err = ops::empty_like(z);
    SharedClock clock;
    NoObserver none;
    std::vector<Aug> outs;
    for (std::size_t i = n - 1; i >= 1; --i) {
      const std::vector<double> interval{pass.ts[i], pass.ts[i - 1]};
      ForwardRecord rec;
      outs.clear();
      if constexpr (is_adaptive<Method>) {
        run_adaptive(dyn, z, interval, pass.schedule.for_adjoint(), clock, stepper, sink, none, &outs, rec, err,
                     EvalPhase::adjoint);
      } else {
        const Grid grid = make_grid(interval[0], interval[1], pass.schedule);
        run_fixed_grid(dyn, z, interval, grid, clock, stepper, sink, none, &outs, rec, EvalPhase::adjoint);
      }
      stats.backward_evaluations += rec.evaluations;
      stats.vjps += rec.evaluations;
      ops::copy(z, outs.back());
      ops::copy(z.y, ys[i - 1]);
      ops::axpy(z.a_y, 1.0, cot[i - 1]);
    }
    if (n == 1) ops::copy(z.a_y, cot[0]);
    std::size_t i = 0;
    f.for_each_parameter([&](std::string_view, P&, P& grad) {
      ops::copy(grad, stash[i]);
      ops::axpy(grad, 1.0, z.a_theta[i]);
      ++i;
    });
    return std::move(z.a_y);
  }

  Pass pass;
  MemoryMeter meter;

 private:
  PingPongSink<State> pp_;
  std::vector<State> ys_;
};

template <class Method, class Field, class State, class Axis, class Schedule, class Observer>
auto solve_with(Backsolve, Field& field, const State& y0, const Axis& axis, const Schedule& schedule, Observer& obs) {
  using Clock = typename Axis::clock_type;
  using Impl = BacksolveBackward<Method, Field, State, Clock, Schedule>;
  return run_forward_for_gradient(std::make_unique<Impl>(field, y0, axis.clock(), axis.outputs(), schedule), y0, obs);
}

}  // namespace flas::ode
