#pragma once
// The entry point. The method and the gradient strategy are template arguments:
//
//   auto sol = ode::solve<ode::Rk4ThreeEighths, ode::Direct>(field, y0, ode::Times{{0, 0.5, 1.25}},
//                                                            ode::StepSize{0.05});
//   State g_y0 = sol.backward(cotangents);      // ∂L/∂y0; ∂L/∂θ accumulates in the field's gradients
//
//   ode::solve<ode::Euler>(flow, h, ode::PerRowTime<float>{T}, ode::StepCount{3})   // FLAS, no gradient
//   ode::solve<ode::Dopri5, ode::Backsolve>(field, y0, times, ode::Tolerances{.rtol = 1e-9, .atol = 1e-11})
//   ode::solve<ode::Euler>(field, y0, times, ode::StepCount{8}, ode::Checkpointed{.every = 2}, observer)
//
// Strategies: NoGradient (default; integrate only), Direct, Checkpointed, Backsolve; each owns its loop.
// Combinations that cannot be right are refused at compile time: an adaptive method with a field that
// needs a fixed slot count, a fixed-step method with Tolerances (or the reverse), a gradient strategy with
// a field without VJP, backsolve with a fixed-slot field.
#include <type_traits>
#include <utility>

#include "flas/ode/butcher_tableau.hpp"
#include "flas/ode/field_concepts.hpp"
#include "flas/ode/forward_pass.hpp"
#include "flas/ode/observers.hpp"
#include "flas/ode/schedule.hpp"
#include "flas/ode/solution.hpp"
#include "flas/ode/strategies/backsolve.hpp"
#include "flas/ode/strategies/checkpointed.hpp"
#include "flas/ode/strategies/direct.hpp"
#include "flas/ode/time_axis.hpp"

namespace flas::ode {

// Integrate only: two working states, nothing kept for a gradient.
struct NoGradient {
  static constexpr bool differentiable = false;
  static constexpr const char* name = "none";
};

template <class Method, class Field, class State, class Axis, class Schedule, class Observer>
Solution<State> solve_with(NoGradient, Field& field, const State& y0, const Axis& axis, const Schedule& schedule,
                           Observer& obs) {
  using Clock = typename Axis::clock_type;
  ForwardPass<Method, Field, State, Clock, Schedule> pass(field, y0, axis.clock(), axis.outputs(), schedule);
  PingPongSink<State> sink(y0);
  Solution<State> sol;
  pass.forward(y0, sink, obs, &sol.ys);
  pass.summarize(sol);
  return sol;
}

// The compile-time refusals, shared by solve and Integrator.
template <class Method, class Strategy, class Field, class State, class Schedule>
constexpr void check_combination() {
  static_assert(RungeKuttaMethod<Method>, "solve: the method must be a type with a Butcher `tableau` and a `name`");
  static_assert(HasStateAlgebra<State>,
                "solve: no StateAlgebra for this state type (include algebra_tensor.hpp, algebra_eigen.hpp, "
                "algebra_xtensor.hpp, or specialise flas::ode::StateAlgebra)");
  static_assert(VelocityField<Field, State>, "solve: the field must be callable as f(h, t, ctx, v)");
  if constexpr (is_adaptive<Method>) {
    static_assert(std::is_same_v<Schedule, Tolerances>, "solve: an adaptive method takes ode::Tolerances");
    static_assert(!needs_fixed_slots<Field>(),
                  "solve: this field keeps state per evaluation slot (needs_fixed_slots) and an adaptive method "
                  "cannot say in advance how many steps it takes; use a fixed-step method");
  } else {
    static_assert(FixedSchedule<Schedule>, "solve: a fixed-step method takes ode::StepSize or ode::StepCount");
  }
  if constexpr (Strategy::differentiable) {
    static_assert(DifferentiableField<Field, State>,
                  "solve: a gradient strategy needs a DifferentiableField (vjp, for_each_parameter, parameter_type)");
  }
  if constexpr (std::is_same_v<Strategy, Backsolve>) {
    static_assert(!needs_fixed_slots<Field>(),
                  "solve: backsolve evaluates the field at states of its own backward solve, not at the forward "
                  "slots a fixed-slot field keeps state for; use Direct or Checkpointed");
  }
}

template <class Method, class Strategy = NoGradient, class Field, class State, TimeAxis Axis, class Schedule,
          class Observer = NoObserver>
auto solve(Field& field, const State& y0, const Axis& axis, const Schedule& schedule, Strategy strategy = {},
           Observer&& observer = {}) {
  check_combination<Method, Strategy, Field, State, Schedule>();
  return solve_with<Method>(strategy, field, y0, axis, schedule, observer);
}

// A reusable solve without gradient: the stepper's buffers, the working states and the outputs survive
// from run to run, so repeated solves on same-shaped states (FLAS: one per generated token) allocate
// nothing after the first. The returned solution is overwritten by the next run.
template <class Method, class Field, class State, TimeAxis Axis, class Schedule>
class Integrator {
 public:
  Integrator(Field& field, const State& like, const Axis& axis, const Schedule& schedule)
      : pass_(field, like, axis.clock(), axis.outputs(), schedule), sink_(like) {
    check_combination<Method, NoGradient, Field, State, Schedule>();
  }

  template <class Observer = NoObserver>
  const Solution<State>& run(const State& y0, Observer&& observer = {}) {
    pass_.forward(y0, sink_, observer, &sol_.ys);
    pass_.summarize(sol_);
    return sol_;
  }

 private:
  ForwardPass<Method, Field, State, typename Axis::clock_type, Schedule> pass_;
  PingPongSink<State> sink_;
  Solution<State> sol_;
};

// Integrate only (solve with NoGradient).
template <class Method, class Field, class State, TimeAxis Axis, class Schedule, class Observer = NoObserver>
Solution<State> integrate(Field& field, const State& y0, const Axis& axis, const Schedule& schedule,
                          Observer&& observer = {}) {
  return solve<Method, NoGradient>(field, y0, axis, schedule, NoGradient{}, std::forward<Observer>(observer));
}

}  // namespace flas::ode
