#pragma once
// The generic explicit Runge-Kutta stepper: any ButcherTableau, any state with a StateAlgebra. One step
// from y0 computes the stage inputs Y_i = y0 + Σ_j (a_ij·dt)·k_j (per-row dt) and derivatives
// k_i = f(Y_i, t0 + c_i·dt), then y1 = y0 + Σ_i (b_i·dt)·k_i; an FSAL method's last stage input is y1 and
// its derivative becomes the next step's k_0. Stage inputs are written where the caller's store says
// (a strategy's tape, so that recording costs no copy) or into scratch.
#include <array>
#include <span>
#include <utility>

#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/butcher_tableau.hpp"
#include "flas/ode/dense_output.hpp"
#include "flas/ode/field_concepts.hpp"
#include "flas/ode/time_axis.hpp"

namespace flas::ode {

template <class Method, class State>
class RkStepper {
 public:
  static constexpr auto& tab = Method::tableau;
  static constexpr int S = tab.stages;
  static constexpr bool fsal = tab.fsal;
  // Stage inputs a step computes besides y0 and y1 (the ones a tape has to store).
  static constexpr int first_inner_stage = 1;
  static constexpr int last_inner_stage = fsal ? S - 2 : S - 1;

  explicit RkStepper(const State& like) : scratch_(ops::empty_like(like)) {
    for (auto& k : k_) k = ops::empty_like(like);
    for (int j = 0; j < S; ++j) kp_[std::size_t(j)] = &k_[std::size_t(j)];
  }

  // k0 = f(t0, y0): the first evaluation of a solve with an FSAL method (and Hairer's f0).
  template <class Field>
  void eval_first(Field& f, const State& y0, RowTimes t0, EvalContext ctx) {
    f(y0, t0, ctx, k_[0]);
  }

  // One step y0 -> y1 (distinct storage). FSAL: k(0) must already hold f(t0, y0).
  // store(i) returns where stage input i (1 <= i <= last_inner_stage) goes, or nullptr for scratch.
  template <class Field, class Clock, class Store>
  void step(Field& f, const State& y0, State& y1, const StepTimes& st, Clock& clock, EvalContext ctx, Store&& store) {
    stages(f, y0, y1, st, clock, ctx, store);
    finish(y0, y1, st.dt);
  }

  // The stage evaluations of a step (for FSAL methods also y1, the last stage input).
  template <class Field, class Clock, class Store>
  void stages(Field& f, const State& y0, State& y1, const StepTimes& st, Clock& clock, EvalContext ctx, Store&& store) {
    for (int i = fsal ? 1 : 0; i < S; ++i) {
      const State* Yi = &y0;
      if (i > 0) {
        State* dst = (fsal && i == S - 1) ? &y1 : store(i);
        if (!dst) dst = &scratch_;
        ops::scale_sum(*dst, &y0, st.dt, std::span<const double>(tab.a[std::size_t(i)].data(), std::size_t(i)),
                       std::span<const State* const>(kp_.data(), std::size_t(i)));
        Yi = dst;
      }
      ctx.stage = i;
      f(*Yi, clock.stage(st, tab.c[std::size_t(i)]), ctx, k_[std::size_t(i)]);
    }
  }

  // y1 = y0 + Σ_i (b_i·dt)·k_i after stages() (non-FSAL). y1 may be y0: the step then updates in place.
  void finish(const State& y0, State& y1, RowValues dt) {
    if constexpr (!fsal) ops::scale_sum(y1, &y0, dt, std::span<const double>(tab.b), std::span<const State* const>(kp_));
  }

  // Embedded error estimate of the last step: err = Σ_i (e_i·dt)·k_i.
  void error_estimate(State& err, RowValues dt) const {
    ops::scale_sum(err, static_cast<const State*>(nullptr), dt, std::span<const double>(tab.e),
                   std::span<const State* const>(kp_));
  }

  // The solution at fraction x of the last step (dense_output.hpp).
  void dense(State& out, const State& y0, const State& y1, RowValues dt, double x) const {
    if (x == 0.0) return ops::copy(out, y0);
    if (x == 1.0 && tab.dense == DenseOutput::linear) return ops::copy(out, y1);
    const auto d = dense_weights(tab, x);
    ops::scale_sum(out, &y0, dt, std::span<const double>(d.w), std::span<const State* const>(kp_));
  }

  // FSAL: the last stage derivative becomes the next step's first.
  void rotate_fsal() {
    if constexpr (fsal) std::swap(k_[0], k_[std::size_t(S - 1)]);
  }

  State& k(int i) { return k_[std::size_t(i)]; }
  const State& k(int i) const { return k_[std::size_t(i)]; }
  std::span<const State* const> ks() const { return kp_; }

 private:
  std::array<State, std::size_t(S)> k_;
  std::array<const State*, std::size_t(S)> kp_{};
  State scratch_;
};

}  // namespace flas::ode
