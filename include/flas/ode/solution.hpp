#pragma once
// What solve returns: the states at the output times reached, statistics, and, for a differentiable
// strategy, backward(): given ∂L/∂ys[j] for every output, it returns ∂L/∂y0 and adds ∂L/∂θ into the
// field's parameter gradients (those for_each_parameter visits). backward may be called more than once.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::ode {

struct SolveStats {
  std::int64_t steps = 0;                 // accepted steps of the forward pass
  std::int64_t rejected = 0;              // rejected attempts (adaptive)
  std::int64_t evaluations = 0;           // field evaluations of the forward pass
  std::int64_t backward_evaluations = 0;  // field evaluations during backward (recomputation, adjoint solves)
  std::int64_t vjps = 0;                  // field VJPs during backward
  std::size_t gradient_bytes_peak = 0;    // peak bytes held for the gradient: tapes, checkpoints, recomputed segments
  bool stopped_early = false;             // an observer stopped the solve
};

template <class State>
struct Solution {
  std::vector<double> ts;  // output times reached, in solver time
  std::vector<State> ys;   // the state at each of them (ys[0] = y0)
  SolveStats stats;
};

template <class State, class Backward>
class GradientSolution : public Solution<State> {
 public:
  GradientSolution(Solution<State> s, std::unique_ptr<Backward> b) : Solution<State>(std::move(s)), b_(std::move(b)) {}

  // cot[j] = ∂L/∂ys[j], one per output reached. Returns ∂L/∂y0; parameter gradients accumulate in the field.
  State backward(std::span<const State> cot) {
    FLAS_CHECK(cot.size() == this->ys.size(), "ode: backward needs one cotangent per output (", this->ys.size(),
               "), got ", cot.size());
    return b_->backward(cot, this->stats);
  }
  State backward(const std::vector<State>& cot) { return backward(std::span<const State>(cot)); }

 private:
  std::unique_ptr<Backward> b_;
};

// What every gradient strategy's solve does once its backward object (`impl`: forward(), pass, meter)
// exists: run the forward pass, summarise it, and hand the solution and the backward on together.
template <class State, class Backward, class Observer>
GradientSolution<State, Backward> run_forward_for_gradient(std::unique_ptr<Backward> impl, const State& y0,
                                                          Observer& obs) {
  Solution<State> sol;
  impl->forward(y0, obs, sol.ys);
  impl->pass.summarize(sol);
  sol.stats.gradient_bytes_peak = impl->meter.peak;
  return GradientSolution<State, Backward>(std::move(sol), std::move(impl));
}

}  // namespace flas::ode
