#pragma once
// The fixed-grid forward loop (torchdiffeq's FixedGridODESolver.integrate): one grid over the whole span
// of output times; after each step every output time the step reached, t1 ≥ t_j in the direction of
// integration, is interpolated inside it (exactly y1 when t_j = t1). Used by every strategy, by
// checkpointed recomputation and by backsolve's backward solves.
#include <cstdint>
#include <vector>

#include "flas/ode/explicit_rk.hpp"
#include "flas/ode/forward_record.hpp"
#include "flas/ode/observers.hpp"

namespace flas::ode {

template <class Method, class Field, class State, class Clock, class Sink, class Observer>
void run_fixed_grid(Field& f, const State& y0, const std::vector<double>& ts, const Grid& grid, Clock& clock,
                    RkStepper<Method, State>& stepper, Sink& sink, Observer& obs, std::vector<State>* outputs,
                    ForwardRecord& rec, EvalPhase phase = EvalPhase::forward) {
  constexpr int S = Method::tableau.stages;
  const double dir = ts.back() >= ts.front() ? 1.0 : -1.0;
  const std::int64_t n = grid.steps();
  const State& first = sink.initial(y0);
  if (outputs) ops::copy(output_slot(*outputs, 0, y0), y0);
  rec.outputs.push_back({-1, 0.0});
  std::size_t j = 1;
  const State* current = &first;  // where y_k lives (in-place sinks)
  for (std::int64_t k = 0; k < n; ++k) {
    const double t0 = grid.t[std::size_t(k)], t1 = grid.t[std::size_t(k + 1)], dt = t1 - t0;
    const StepTimes st = clock.step(&grid, k, t0, t1, dt);
    const State& ya = [&]() -> const State& {
      if constexpr (requires { Sink::in_place; }) return *current;
      else return k == 0 ? first : sink.state(k);
    }();
    // In place unless y0 is the caller's, or an output falls strictly inside the step (it needs y0 and y1).
    const bool inside = j < ts.size() && dir * t1 > dir * ts[j];
    State& yb = [&]() -> State& {
      if constexpr (requires { Sink::in_place; }) {
        State* target = (k > 0 && !inside && !Method::tableau.fsal) ? const_cast<State*>(current) : &sink.other(current);
        current = target;
        return *target;
      } else {
        return sink.state(k + 1);
      }
    }();
    const EvalContext ctx{k, 0, S, n * S, phase};
    stepper.stages(f, ya, yb, st, clock, ctx, [&](int i) { return sink.stage(k, i); });
    rec.evaluations += S;
    rec.steps.push_back({t0, t1, dt});
    // The observer sees (y_k, v_k) before an in-place update overwrites y_k.
    const bool go_on = notify(obs, k, t0, ya, stepper.k(0));
    stepper.finish(ya, yb, st.dt);
    while (j < ts.size() && dir * t1 >= dir * ts[j]) {
      const double x = ts[j] == t0 ? 0.0 : ts[j] == t1 ? 1.0 : (ts[j] - t0) / (t1 - t0);
      if (outputs) stepper.dense(output_slot(*outputs, j, y0), ya, yb, st.dt, x);
      rec.outputs.push_back({k, x});
      sink.output(k, stepper);
      ++j;
    }
    sink.accepted(k, stepper);
    if (!go_on && k + 1 < n) {
      rec.stopped_early = true;
      break;
    }
  }
  if (outputs) outputs->erase(outputs->begin() + std::ptrdiff_t(j), outputs->end());
  if (!rec.stopped_early) {
    if constexpr (requires { Sink::in_place; })
      notify_finish(obs, grid.t.back(), *current);
    else
      notify_finish(obs, grid.t.back(), n == 0 ? first : sink.state(n));
  }
}

}  // namespace flas::ode
