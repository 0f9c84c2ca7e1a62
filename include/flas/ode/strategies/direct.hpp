#pragma once
// Direct: keep every stage input of every step and backpropagate through the discrete solution exactly
// (torchdiffeq's backprop through odeint; for dopri5 also through the dense output and, like torchdiffeq,
// through Hairer's first step). Memory: steps × stages states.
#include <memory>
#include <vector>

#include "flas/ode/solution.hpp"
#include "flas/ode/strategies/reverse_sweep.hpp"

namespace flas::ode {

struct Direct {
  static constexpr bool differentiable = true;
  static constexpr const char* name = "direct";
};

template <class Method, class Field, class State, class Clock, class Schedule>
class DirectBackward {
 public:
  using Pass = ForwardPass<Method, Field, State, Clock, Schedule>;
  using Sweep = ReverseSweep<Method, Field, State, Clock, Schedule>;

  DirectBackward(Field& f, const State& y0, Clock clock, std::vector<double> ts, Schedule schedule)
      : like_(ops::empty_like(y0)),
        delta_(first_step_gradient_wanted<Method, Field, State, Clock, Schedule>(schedule)),
        pass(f, y0, std::move(clock), std::move(ts), schedule),
        tape(like_, meter, delta_),
        bw_(like_) {}

  template <class Observer>
  void forward(const State& y0, Observer& obs, std::vector<State>& outputs) {
    pass.forward(y0, tape, obs, &outputs);
  }

  State backward(std::span<const State> cot, SolveStats& stats) {
    Sweep sweep(pass, bw_, like_, cot, delta_);
    const std::int64_t n = std::int64_t(pass.rec.steps.size());
    sweep.sweep(tape, 0, n);
    State g = sweep.finish(tape.state(0), tape);
    stats.vjps += sweep.vjps();
    return g;
  }

  State like_;
  bool delta_;
  MemoryMeter meter;
  Pass pass;
  StageTape<Method, State> tape;

 private:
  RkStepBackward<Method, State> bw_;
};

template <class Method, class Field, class State, class Axis, class Schedule, class Observer>
auto solve_with(Direct, Field& field, const State& y0, const Axis& axis, const Schedule& schedule, Observer& obs) {
  using Clock = typename Axis::clock_type;
  using Impl = DirectBackward<Method, Field, State, Clock, Schedule>;
  return run_forward_for_gradient(std::make_unique<Impl>(field, y0, axis.clock(), axis.outputs(), schedule), y0, obs);
}

}  // namespace flas::ode
