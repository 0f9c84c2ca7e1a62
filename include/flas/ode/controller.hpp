#pragma once
// Step-size control for embedded pairs: the next step from the error ratio r of the last attempt, and
// the first step by Hairer's rule, both as torchdiffeq computes them (SPEC.md, ODE section):
//   torchdiffeq: dt·min(ifactor, max(safety·r^(−1/order), dfac)), dfac = 1 after an acceptance (an accepted
//                step never shrinks dt) and `dfactor` after a rejection; r = 0 gives dt·ifactor.
//   pi:          Hairer & Wanner's PI controller (their DOPRI5 code, β = 0.04).
//   first step:  scale = atol + |y0|·rtol; d0 = ‖y0/scale‖, d1 = ‖f0/scale‖; h0 = 0.01·d0/d1, or 1e-6 if
//                either is below 1e-5; f1 = f(t0 + h0, y0 + h0·f0); d2 = ‖(f1 − f0)/scale‖/h0;
//                h1 = (0.01/max(d1, d2))^(1/order) (or max(1e-6, 1e-3·h0) if both are tiny); min(100·h0, h1).
// All magnitudes are in solver time; the sign of the direction is applied by the loop.
#include <algorithm>
#include <cmath>

#include "flas/ode/schedule.hpp"

namespace flas::ode {

class StepSizeController {
 public:
  StepSizeController(const Tolerances& tol, int order) : tol_(tol), order_(order) {}

  // Next signed step after an attempt of size dt with error ratio r.
  FLAS_ODE_STRICT_FP double next(double dt, double r, bool accepted) {
    double out;
    if (tol_.controller == StepController::torchdiffeq) {
      if (r == 0) {
        out = dt * tol_.ifactor;
      } else {
        const double dfac = r < 1 ? 1.0 : tol_.dfactor;
        const double grow = tol_.safety / std::pow(r, 1.0 / double(order_));
        const double factor = std::min(tol_.ifactor, std::max(grow, dfac));
        out = dt * factor;
      }
    } else {
      constexpr double beta = 0.04;
      const double expo = 1.0 / double(order_) - 0.75 * beta;
      const double fac11 = std::pow(std::max(r, 1e-300), expo);
      double shrink = fac11 / std::pow(facold_, beta) / tol_.safety;  // dt_new = dt / shrink
      shrink = std::max(1.0 / tol_.ifactor, std::min(1.0 / tol_.dfactor, shrink));
      if (accepted) {
        facold_ = std::max(r, 1e-4);
        if (rejected_last_) shrink = std::max(shrink, 1.0);  // no growth right after a rejection
      }
      rejected_last_ = !accepted;
      out = dt / shrink;
    }
    const double mag = std::clamp(std::abs(out), tol_.min_step, tol_.max_step);
    return std::copysign(mag, dt);
  }

 private:
  Tolerances tol_;
  int order_;
  double facold_ = 1e-4;
  bool rejected_last_ = false;
};

// Hairer's first step, split so that direct mode can differentiate it: the scalar part after the norms.
struct FirstStepRecord {
  double h0 = 0, d0 = 0, d1 = 0, d2 = 0, h1 = 0, h = 0;
  bool h0_fixed = false;    // d0 or d1 below 1e-5: h0 = 1e-6, a constant
  bool h1_fixed = false;    // d1 and d2 tiny: h1 = max(1e-6, 1e-3·h0)
  bool took_100h0 = false;  // h = 100·h0 (else h1)
  bool d1_is_max = false;   // max(d1, d2) picked d1
  bool selected = false;    // the first step came from this rule (not from Tolerances::first_step)
  bool first_attempt_accepted = false;
};

FLAS_ODE_STRICT_FP inline double first_step_h0(FirstStepRecord& r) {
  r.h0_fixed = r.d0 < 1e-5 || r.d1 < 1e-5;
  r.h0 = r.h0_fixed ? 1e-6 : std::abs(0.01 * r.d0 / r.d1);
  return r.h0;
}

FLAS_ODE_STRICT_FP inline double first_step_h(FirstStepRecord& r, double probe_norm, int order) {
  r.d2 = std::abs(probe_norm / r.h0);
  r.h1_fixed = r.d1 <= 1e-15 && r.d2 <= 1e-15;
  r.d1_is_max = !(r.d2 > r.d1);  // Python's max(d1, d2) keeps d1 on ties
  if (r.h1_fixed)
    r.h1 = std::max(1e-6, r.h0 * 1e-3);
  else
    r.h1 = std::pow(0.01 / (r.d1_is_max ? r.d1 : r.d2), 1.0 / double(order));
  const double h100 = 100 * r.h0;
  r.took_100h0 = h100 < r.h1 || (h100 == r.h1);
  r.h = r.took_100h0 ? h100 : r.h1;
  r.selected = true;
  return r.h;
}

}  // namespace flas::ode
