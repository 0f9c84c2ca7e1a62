#pragma once
// What a forward pass leaves behind for a gradient strategy (a few scalars per step; states live in the
// strategy's sink), and the sink that keeps nothing.
//
// A sink tells the loops where states live:
//   const State& initial(y0)     where the loop reads y_0: y0 itself, or a copy the sink keeps
//   State& state(k)              storage of y_k for k past the first step
//   State* stage(k, i)           storage of stage input i of step k, or nullptr for scratch
//   void accepted(k, stepper)    after step k is accepted; y_{k+1} is in state(k+1), k_i in the stepper
//   void output(k, stepper)      an output time fell inside step k (its k_i are still in the stepper)
//   State* probe(j)              dopri5's first-step probe: j = 0 its input, j = 1 its derivative (or nullptr)
#include <cstdint>
#include <optional>
#include <vector>

#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/controller.hpp"
#include "flas/ode/schedule.hpp"

namespace flas::ode {

struct StepRecord {
  double t0, t1, dt;  // solver time; dt is the step as the stepper used it (adaptive: t1 = t0 + dt)
};

struct OutputRecord {
  std::int64_t step;  // the step the output falls in; −1: the initial state itself
  double x;           // fraction of that step
};

struct ForwardRecord {
  std::vector<StepRecord> steps;
  std::vector<OutputRecord> outputs;  // one per output reached
  std::optional<Grid> grid;           // fixed-step solves
  FirstStepRecord first;              // adaptive solves
  std::int64_t evaluations = 0;
  std::int64_t rejected = 0;
  bool stopped_early = false;
  const Grid* grid_ptr() const { return grid ? &*grid : nullptr; }
};

// Bytes held for a gradient: current and peak (the memory figure strategies are compared by).
struct MemoryMeter {
  std::size_t current = 0, peak = 0;
  void add(std::size_t b) {
    current += b;
    if (current > peak) peak = current;
  }
  void remove(std::size_t b) { current -= b < current ? b : current; }
};

// Output j's storage in a vector reused from run to run: states already there are overwritten.
template <class State>
State& output_slot(std::vector<State>& outs, std::size_t j, const State& like) {
  if (outs.size() <= j) outs.push_back(ops::empty_like(like));
  return outs[j];
}

// Keeps only the two states a step writes; the first step reads y0 where it is. The fixed-grid loop may
// also update one of them in place (in_place): a non-FSAL step needs y0 only until its last combination,
// so one state less stays in the cache.
template <class State>
class PingPongSink {
 public:
  static constexpr bool in_place = true;
  explicit PingPongSink(const State& like) : a_(ops::empty_like(like)), b_(ops::empty_like(like)) {}
  // A working state that is not `current`.
  State& other(const State* current) { return current == &a_ ? b_ : a_; }
  const State& initial(const State& y0) { return y0; }
  State& state(std::int64_t k) { return (k & 1) ? b_ : a_; }
  State* stage(std::int64_t, int) { return nullptr; }
  template <class Stepper>
  void accepted(std::int64_t, const Stepper&) {}
  template <class Stepper>
  void output(std::int64_t, const Stepper&) {}
  State* probe(int) { return nullptr; }

 private:
  State a_, b_;
};

}  // namespace flas::ode
