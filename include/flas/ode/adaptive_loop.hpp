#pragma once
// The adaptive forward loop (torchdiffeq's RKAdaptiveStepsizeODESolver): f0 once, Hairer's first step,
// then for each output time: attempt steps until one ends at or past it (rejected attempts retry from the
// same state with a smaller step), and evaluate the dense output of the last accepted step there. Steps
// are never clipped to an output time. The error ratio is ops::error_norm (RMS, or the state's own norm,
// e.g. backsolve's mixed adjoint norm).
#include <cmath>
#include <cstdint>
#include <vector>

#include "flas/ode/controller.hpp"
#include "flas/ode/explicit_rk.hpp"
#include "flas/ode/forward_record.hpp"
#include "flas/ode/observers.hpp"

namespace flas::ode {

namespace detail {

// Hairer's first step (controller.hpp) in solver time. Per-row clocks measure derivatives in solver time:
// f_s = rate ⊙ f. Records the inputs of the rule so that direct mode can differentiate it.
template <class Method, class Field, class State, class Clock, class Sink>
double select_first_step(Field& f, const State& y0, State& f0, double t0, double dir, const Tolerances& tol,
                         Clock& clock, Sink& sink, FirstStepRecord& r, EvalPhase phase, std::int64_t& evals) {
  constexpr int order = Method::tableau.order;
  const State* f0s = &f0;
  State f0_scaled, f1_scaled;
  if constexpr (Clock::per_row) {
    f0_scaled = ops::zeros_like(y0);
    ops::axpy(f0_scaled, clock.rate(), f0);
    f0s = &f0_scaled;
  }
  r.d0 = ops::scaled_norm(y0, static_cast<const State*>(nullptr), y0, tol.atol, tol.rtol);
  r.d1 = ops::scaled_norm(*f0s, static_cast<const State*>(nullptr), y0, tol.atol, tol.rtol);
  const double h0 = first_step_h0(r);
  State* probe_in = sink.probe(0);
  State* probe_out = sink.probe(1);
  State probe_in_scratch, probe_out_scratch;
  if (!probe_in) probe_in_scratch = ops::empty_like(y0), probe_in = &probe_in_scratch;
  if (!probe_out) probe_out_scratch = ops::empty_like(y0), probe_out = &probe_out_scratch;
  // y0 + h0·f0_s in the direction of integration: per row that is (dir·h0·rate_b)·f0.
  const double signed_h0 = dir * h0;
  const StepTimes st = clock.step(nullptr, 0, t0, t0 + signed_h0, signed_h0);
  ops::copy(*probe_in, y0);
  ops::axpy(*probe_in, st.dt, f0);
  f(*probe_in, clock.at(t0 + signed_h0), EvalContext{0, -1, Method::tableau.stages, -1, EvalPhase::first_step_probe},
    *probe_out);
  ++evals;
  (void)phase;
  const State* f1s = probe_out;
  if constexpr (Clock::per_row) {
    f1_scaled = ops::zeros_like(y0);
    ops::axpy(f1_scaled, clock.rate(), *probe_out);
    f1s = &f1_scaled;
  }
  const double n2 = ops::scaled_norm(*f1s, f0s, y0, tol.atol, tol.rtol);
  return first_step_h(r, n2, order);
}

}  // namespace detail

template <class Method, class Field, class State, class Clock, class Sink, class Observer>
void run_adaptive(Field& f, const State& y0, const std::vector<double>& ts, const Tolerances& tol, Clock& clock,
                  RkStepper<Method, State>& stepper, Sink& sink, Observer& obs, std::vector<State>* outputs,
                  ForwardRecord& rec, State& err, EvalPhase phase = EvalPhase::forward) {
  constexpr auto& tab = Method::tableau;
  constexpr int S = tab.stages;
  static_assert(tab.fsal, "the adaptive loop reuses the last stage as the next first stage (FSAL tableaus)");
  const double dir = ts.back() >= ts.front() ? 1.0 : -1.0;
  FLAS_CHECK(ops::all_finite(y0), "ode: non-finite values in the initial state");
  const State& first = sink.initial(y0);
  auto state_at = [&](std::int64_t k) -> State& { return sink.state(k); };
  auto input_at = [&](std::int64_t k) -> const State& { return k == 0 ? first : sink.state(k); };
  if (outputs) ops::copy(output_slot(*outputs, 0, y0), y0);
  rec.outputs.push_back({-1, 0.0});

  double t = ts.front();
  stepper.eval_first(f, first, clock.at(t), EvalContext{0, 0, S, -1, phase});
  ++rec.evaluations;
  double dt;
  if (tol.first_step > 0) {
    dt = dir * tol.first_step;
  } else {
    dt = dir * detail::select_first_step<Method>(f, first, stepper.k(0), t, dir, tol, clock, sink, rec.first,
                                                 phase, rec.evaluations);
  }
  StepSizeController controller(tol, tab.order);
  std::int64_t k = 0, attempts = 0;
  bool rotate_pending = false;
  double t_prev = t;
  for (std::size_t j = 1; j < ts.size(); ++j) {
    const double next = ts[j];
    while (dir * (next - t) > 0) {
      FLAS_CHECK(++attempts <= tol.max_steps, "ode: ", Method::name, " exceeded max_steps = ", tol.max_steps,
                 " before t = ", next, " (now at t = ", t, ", dt = ", dt, ")");
      if (rotate_pending) stepper.rotate_fsal(), rotate_pending = false;
      const double t1 = t + dt;
      FLAS_CHECK(dir * (t1 - t) > 0, "ode: step size underflow at t = ", t, " (dt = ", dt, ")");
      const StepTimes st = clock.step(nullptr, k, t, t1, dt);
      const State& ya = input_at(k);
      State& yb = state_at(k + 1);
      stepper.step(f, ya, yb, st, clock, EvalContext{k, 0, S, -1, phase}, [&](int i) { return sink.stage(k, i); });
      rec.evaluations += S - 1;
      stepper.error_estimate(err, st.dt);
      const double r = ops::error_norm(err, ya, yb, tol.atol, tol.rtol);
      const bool accept = r <= 1;
      if (accept) {
        if (attempts == 1) rec.first.first_attempt_accepted = true;
        rec.steps.push_back({t, t1, dt});
        sink.accepted(k, stepper);
        const bool go_on = notify(obs, k, t, ya, stepper.k(0));
        t_prev = t;
        t = t1;
        ++k;
        rotate_pending = true;
        if (!go_on) {
          rec.stopped_early = true;
          if (outputs) outputs->erase(outputs->begin() + std::ptrdiff_t(j), outputs->end());
          return;
        }
      } else {
        ++rec.rejected;
      }
      dt = controller.next(dt, r, accept);
    }
    if (k == 0) {  // no step yet: the output is the initial state
      if (outputs) ops::copy(output_slot(*outputs, j, y0), first);
      rec.outputs.push_back({-1, 0.0});
      continue;
    }
    const StepRecord& last = rec.steps.back();
    const double x = (next - t_prev) / (t - t_prev);
    if (outputs) {
      const StepTimes st = clock.step(nullptr, k - 1, last.t0, last.t1, last.dt);
      stepper.dense(output_slot(*outputs, j, y0), input_at(k - 1), input_at(k), st.dt, x);
    }
    rec.outputs.push_back({k - 1, x});
    sink.output(k - 1, stepper);
  }
  if (outputs) outputs->erase(outputs->begin() + std::ptrdiff_t(ts.size()), outputs->end());
  notify_finish(obs, t, input_at(k));
}

}  // namespace flas::ode
