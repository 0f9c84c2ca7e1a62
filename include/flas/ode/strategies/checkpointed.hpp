#pragma once
// Checkpointed: keep a few states of the forward pass and recompute the stage inputs of each stretch of
// steps just before backpropagating through it. The numbers are those of direct (the recomputation replays
// the recorded step times; a deterministic field gives bit-identical stages) with less memory:
//   every = m      keep y at every m-th step (default ⌈√steps⌉): memory ≈ steps/m + m·stages states;
//   snapshots = c  binomial (revolve-style) schedule: at most c snapshots besides y0 and one step's stage
//                  inputs, each step recomputed O(log steps) times.
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "flas/ode/solution.hpp"
#include "flas/ode/strategies/reverse_sweep.hpp"

namespace flas::ode {

struct Checkpointed {
  static constexpr bool differentiable = true;
  static constexpr const char* name = "checkpointed";
  std::int64_t every = 0;      // keep every `every`-th state; 0: ⌈√steps⌉ (fixed grids) or 8 (adaptive)
  std::int64_t snapshots = 0;  // > 0: binomial schedule with this many snapshots instead
};

template <class Method, class Field, class State, class Clock, class Schedule>
class CheckpointedBackward {
 public:
  using Pass = ForwardPass<Method, Field, State, Clock, Schedule>;
  using Sweep = ReverseSweep<Method, Field, State, Clock, Schedule>;
  using Tape = StageTape<Method, State>;

  CheckpointedBackward(Field& f, const State& y0, Clock clock, std::vector<double> ts, Schedule schedule,
                       Checkpointed opt)
      : like_(ops::empty_like(y0)),
        delta_(first_step_gradient_wanted<Method, Field, State, Clock, Schedule>(schedule)),
        opt_(opt),
        pass(f, y0, std::move(clock), std::move(ts), schedule),
        tape_(like_, meter, delta_),
        pp_(y0),
        bw_(like_) {
    if (opt_.snapshots <= 0 && opt_.every <= 0) {
      if constexpr (is_adaptive<Method>) {
        opt_.every = 8;
      } else {
        const double n = double(make_grid(pass.ts.front(), pass.ts.back(), schedule).steps());
        opt_.every = std::max<std::int64_t>(1, std::int64_t(std::ceil(std::sqrt(n))));
      }
    }
  }

  // The forward pass keeps y0 and, for the every-m schedule, every m-th state.
  template <class Observer>
  void forward(const State& y0, Observer& obs, std::vector<State>& outputs) {
    keep(y0);
    Recorder rec{*this};
    pass.forward(y0, rec, obs, &outputs);
  }

  State backward(std::span<const State> cot, SolveStats& stats) {
    Sweep sweep(pass, bw_, like_, cot, delta_);
    has_output_ = pass.steps_with_outputs();
    const std::int64_t n = std::int64_t(pass.rec.steps.size());
    const std::int64_t evals0 = pass.recomputed_evaluations;
    if (n > 0) {
      if (opt_.snapshots > 0) {
        reverse(sweep, 0, n, checkpoints_[0], opt_.snapshots);
      } else {
        for (std::int64_t c = (n - 1) / opt_.every; c >= 0; --c) {
          const std::int64_t a = c * opt_.every, b = std::min(a + opt_.every, n);
          tape_.reset(a);
          pass.replay(a, b, checkpoints_[std::size_t(c)], tape_, has_output_);
          sweep.sweep(tape_, a, b);
        }
      }
    }
    State g = sweep.finish(checkpoints_[0], tape_);
    stats.vjps += sweep.vjps();
    stats.backward_evaluations += pass.recomputed_evaluations - evals0;
    stats.gradient_bytes_peak = std::max(stats.gradient_bytes_peak, meter.peak);
    return g;
  }

  MemoryMeter meter;

 private:
  // Forward sink: two working states; copies every m-th state (every-m schedule only).
  struct Recorder {
    CheckpointedBackward& self;
    const State& initial(const State& y0) { return y0; }
    State& state(std::int64_t k) { return self.pp_.state(k); }
    State* stage(std::int64_t, int) { return nullptr; }
    void accepted(std::int64_t k, const typename Pass::Stepper&) {
      if (self.opt_.snapshots <= 0 && (k + 1) % self.opt_.every == 0) self.keep(self.pp_.state(k + 1));
    }
    void output(std::int64_t, const typename Pass::Stepper&) {}
    State* probe(int j) { return self.tape_.probe(j); }
  };

  void keep(const State& y) {
    checkpoints_.push_back(ops::empty_like(y));
    ops::copy(checkpoints_.back(), y);
    meter.add(ops::bytes(y));
  }

  // Advances y_a to y_c (no recording) into out.
  void advance(std::int64_t a, std::int64_t c, const State& ya, State& out) {
    if (c == a) return ops::copy(out, ya);
    pass.replay(a, c, ya, pp_, has_output_);
    ops::copy(out, pp_.state(c));
  }

  // Binomial reversal of steps [a, b) from ya with s snapshots to spare.
  void reverse(Sweep& sweep, std::int64_t a, std::int64_t b, const State& ya, std::int64_t s) {
    const std::int64_t n = b - a;
    if (n == 1) {
      tape_.reset(a);
      pass.replay(a, b, ya, tape_, has_output_);
      sweep.sweep(tape_, a, b);
      return;
    }
    if (s == 0) {  // no snapshot left: recompute from ya for every step
      State tmp = ops::empty_like(ya);
      meter.add(ops::bytes(ya));
      for (std::int64_t k = b - 1; k >= a; --k) {
        advance(a, k, ya, tmp);
        tape_.reset(k);
        pass.replay(k, k + 1, tmp, tape_, has_output_);
        sweep.sweep(tape_, k, k + 1);
      }
      meter.remove(ops::bytes(ya));
      return;
    }
    const std::int64_t m = split(n, s);
    State snap = ops::empty_like(ya);
    meter.add(ops::bytes(ya));
    advance(a, a + m, ya, snap);
    reverse(sweep, a + m, b, snap, s - 1);
    meter.remove(ops::bytes(ya));
    snap = State{};
    reverse(sweep, a, a + m, ya, s);
  }

  // Steps to advance before the next snapshot: with β(s, r) = C(s + r, s) the most steps s snapshots can
  // reverse with r sweeps, take the smallest r with β(s, r) ≥ n and advance β(s, r − 1) steps.
  static std::int64_t split(std::int64_t n, std::int64_t s) {
    auto beta = [s](std::int64_t r) {
      double v = 1;
      for (std::int64_t i = 1; i <= s; ++i) v = v * double(r + i) / double(i);
      return v;
    };
    std::int64_t r = 1;
    while (beta(r) < double(n)) ++r;
    const std::int64_t m = std::int64_t(beta(r - 1));
    return std::clamp<std::int64_t>(m, 1, n - 1);
  }

  State like_;
  bool delta_;
  Checkpointed opt_;

 public:
  Pass pass;

 private:
  Tape tape_;
  PingPongSink<State> pp_;
  RkStepBackward<Method, State> bw_;
  std::deque<State> checkpoints_;
  std::vector<char> has_output_;
};

template <class Method, class Field, class State, class Axis, class Schedule, class Observer>
auto solve_with(Checkpointed opt, Field& field, const State& y0, const Axis& axis, const Schedule& schedule,
                Observer& obs) {
  using Clock = typename Axis::clock_type;
  using Impl = CheckpointedBackward<Method, Field, State, Clock, Schedule>;
  return run_forward_for_gradient(std::make_unique<Impl>(field, y0, axis.clock(), axis.outputs(), schedule, opt), y0,
                                  obs);
}

}  // namespace flas::ode
