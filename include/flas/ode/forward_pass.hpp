#pragma once
// A solve's forward pass and everything a strategy keeps of it: the field, the clock, the output times,
// the schedule, the stepper and the record of the steps taken. Strategies run `forward` once with their
// own sink (what to store), and `replay` to recompute a stretch of recorded steps bit for bit.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "flas/ode/adaptive_loop.hpp"
#include "flas/ode/fixed_grid_loop.hpp"
#include "flas/ode/forward_record.hpp"
#include "flas/ode/solution.hpp"
#include "flas/ode/time_axis.hpp"

namespace flas::ode {

template <class Method, class Field, class State, class Clock, class Schedule>
class ForwardPass {
 public:
  static constexpr auto& tab = Method::tableau;
  static constexpr int S = tab.stages;
  static constexpr bool adaptive = is_adaptive<Method>;
  using Stepper = RkStepper<Method, State>;

  ForwardPass(Field& f, const State& y0, Clock clock, std::vector<double> ts, Schedule schedule)
      : field(f), clock(std::move(clock)), ts(std::move(ts)), schedule(schedule), stepper(y0) {
    FLAS_CHECK(!this->ts.empty(), "ode: no output times (the first one is where y0 is given)");
    for (std::size_t j = 1; j < this->ts.size(); ++j)
      FLAS_CHECK(std::isfinite(this->ts[j]) && (this->ts[j] - this->ts[j - 1]) * (this->ts.back() - this->ts.front()) >= 0,
                 "ode: output times must be finite and monotonic; t[", j - 1, "] = ", this->ts[j - 1], ", t[", j,
                 "] = ", this->ts[j]);
    this->clock.bind(ops::rows(y0));
    if constexpr (adaptive) err = ops::empty_like(y0);
  }

  template <class Sink, class Observer>
  void forward(const State& y0, Sink& sink, Observer& obs, std::vector<State>* outputs) {
    rec.steps.clear(), rec.outputs.clear();
    rec.first = {}, rec.evaluations = 0, rec.rejected = 0, rec.stopped_early = false;
    if constexpr (adaptive) {
      run_adaptive(field, y0, ts, schedule, clock, stepper, sink, obs, outputs, rec, err);
    } else {
      if (!rec.grid) rec.grid = make_grid(ts.front(), ts.back(), schedule);
      run_fixed_grid(field, y0, ts, *rec.grid, clock, stepper, sink, obs, outputs, rec);
    }
  }

  StepTimes step_times(std::int64_t k) {
    const StepRecord& s = rec.steps[std::size_t(k)];
    return clock.step(rec.grid_ptr(), k, s.t0, s.t1, s.dt);
  }
  EvalContext context(std::int64_t k, EvalPhase phase) const {
    return {k, 0, S, adaptive ? -1 : std::int64_t(rec.steps.size()) * S, phase};
  }

  // Recomputes steps [a, b) from y_a with the recorded times, through the sink's hooks (a tape records
  // them). Deterministic fields give bit-identical stage inputs.
  template <class Sink>
  void replay(std::int64_t a, std::int64_t b, const State& ya, Sink& sink, std::span<const char> has_output) {
    const State& first = sink.initial(ya);
    if constexpr (tab.fsal) {
      const StepTimes st = step_times(a);
      EvalContext ctx = context(a == 0 ? 0 : a - 1, EvalPhase::recompute);
      ctx.stage = a == 0 ? 0 : S - 1;
      stepper.eval_first(field, first, st.t0, ctx);
      ++recomputed_evaluations;
    }
    for (std::int64_t k = a; k < b; ++k) {
      const StepTimes st = step_times(k);
      stepper.step(field, k == a ? first : sink.state(k), sink.state(k + 1), st, clock,
                   context(k, EvalPhase::recompute), [&](int i) { return sink.stage(k, i); });
      recomputed_evaluations += tab.fsal ? S - 1 : S;
      sink.accepted(k, stepper);
      if (has_output[std::size_t(k)]) sink.output(k, stepper);
      stepper.rotate_fsal();
    }
  }

  // Output times reached and forward statistics into a Solution.
  void summarize(Solution<State>& sol) const {
    sol.ts.assign(ts.begin(), ts.begin() + std::ptrdiff_t(rec.outputs.size()));
    sol.stats.steps = std::int64_t(rec.steps.size());
    sol.stats.rejected = rec.rejected;
    sol.stats.evaluations = rec.evaluations;
    sol.stats.stopped_early = rec.stopped_early;
  }

  // has_output[k]: an output falls inside step k.
  std::vector<char> steps_with_outputs() const {
    std::vector<char> h(rec.steps.size(), 0);
    for (const auto& o : rec.outputs)
      if (o.step >= 0) h[std::size_t(o.step)] = 1;
    return h;
  }

  Field& field;
  Clock clock;
  std::vector<double> ts;
  Schedule schedule;
  Stepper stepper;
  ForwardRecord rec;
  State err{};
  std::int64_t recomputed_evaluations = 0;
};

}  // namespace flas::ode
