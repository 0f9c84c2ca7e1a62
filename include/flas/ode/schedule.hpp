#pragma once
// How a solve steps: a fixed step size, a fixed number of steps, or tolerances for an adaptive method;
// and the fixed grid a span is cut into, by torchdiffeq's rule (SPEC.md, ODE section):
//   n = ceil((t_end − t_start)/h + 1) points, t_k = t_start + k·h, the last point set to t_end (a short
//   last step). A decreasing span is cut the same way in negated time, as torchdiffeq does.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/ode/row_values.hpp"

namespace flas::ode {

// Fixed step size h on every solved span (torchdiffeq's options={"step_size": h}).
struct StepSize {
  double h;
};

// n equal steps on every solved span.
struct StepCount {
  std::int64_t n;
};

enum class StepController : std::uint8_t {
  torchdiffeq,  // dt·min(ifactor, max(safety·r^(−1/order), dfac)); dfac = 1 after an acceptance
  pi,           // Hairer & Wanner's PI controller (DOPRI5 code: β = 0.04)
};

// Adaptive stepping. The defaults of the controller reproduce torchdiffeq's dopri5.
struct Tolerances {
  double rtol = 1e-7;
  double atol = 1e-9;
  double adjoint_rtol = -1;  // backsolve's backward solves; negative: same as rtol / atol
  double adjoint_atol = -1;
  double first_step = 0;     // 0: Hairer's first-step selection
  double min_step = 0;       // bounds on |dt| for every step after the first
  double max_step = std::numeric_limits<double>::infinity();
  std::int64_t max_steps = std::int64_t(1) << 24;
  StepController controller = StepController::torchdiffeq;
  double safety = 0.9, ifactor = 10.0, dfactor = 0.2;
  // Direct mode: let the gradient flow through Hairer's first step, as torchdiffeq's backprop does
  // (SPEC.md: worth 2.3e-10 on the fixture). Off: every step size is a constant.
  bool differentiate_first_step = true;

  Tolerances for_adjoint() const {
    Tolerances t = *this;
    if (adjoint_rtol >= 0) t.rtol = adjoint_rtol;
    if (adjoint_atol >= 0) t.atol = adjoint_atol;
    return t;
  }
};

template <class S>
concept FixedSchedule = std::same_as<S, StepSize> || std::same_as<S, StepCount>;

// A fixed grid on one span.
struct Grid {
  std::vector<double> t;        // t.front() = start, t.back() = end
  std::int64_t uniform_n = 0;   // n when cut into n equal steps (StepCount), else 0
  std::int64_t steps() const { return std::int64_t(t.size()) - 1; }
};

FLAS_ODE_STRICT_FP inline Grid make_grid(double t_start, double t_end, StepSize s) {
  FLAS_CHECK(s.h > 0 && std::isfinite(s.h), "ode: step size must be positive and finite, got ", s.h);
  FLAS_CHECK(std::isfinite(t_start) && std::isfinite(t_end), "ode: non-finite span [", t_start, ", ", t_end, "]");
  const double dir = t_end >= t_start ? 1.0 : -1.0;
  const double u0 = dir * t_start, u1 = dir * t_end;  // negation is exact: the reversed grid mirrors torchdiffeq's
  const double niters = std::ceil((u1 - u0) / s.h + 1);
  FLAS_CHECK(niters < 1e9, "ode: step size ", s.h, " cuts [", t_start, ", ", t_end, "] into too many steps");
  Grid g;
  g.t.resize(std::size_t(niters));
  for (std::size_t k = 0; k < g.t.size(); ++k) {
    const double kh = double(k) * s.h;
    g.t[k] = dir * (kh + u0);
  }
  g.t.back() = t_end;
  return g;
}

FLAS_ODE_STRICT_FP inline Grid make_grid(double t_start, double t_end, StepCount s) {
  FLAS_CHECK(s.n >= 1, "ode: step count must be at least 1, got ", s.n);
  Grid g;
  g.uniform_n = s.n;
  g.t.resize(std::size_t(s.n) + 1);
  const double h = (t_end - t_start) / double(s.n);
  for (std::int64_t k = 0; k < s.n; ++k) {
    const double kh = double(k) * h;
    g.t[std::size_t(k)] = kh + t_start;
  }
  g.t.back() = t_end;
  return g;
}

}  // namespace flas::ode
