#pragma once
// The VJP of Hairer's first-step rule (controller.hpp), for direct mode with torchdiffeq semantics: the
// cotangent of the first step δ flows back through min(100·h0, h1), the norms d0, d1, d2 and the probe
// evaluation f1 = f(t0 + h0, y0 + h0·f0) into y0, f0 (= k_0 of the first step) and the parameters.
// Norms are RMS: ∂‖v‖/∂v_i = v_i/(N‖v‖); the scale s = atol + rtol·|y0| depends on y0 too.
// Time runs in direction dir (±1); torchdiffeq integrates a decreasing span in negated time, where
// derivatives are f_s = dir·f and the step is h = dir·δ.
#include <cmath>
#include <cstdint>
#include <vector>

#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/controller.hpp"
#include "flas/ode/field_concepts.hpp"

namespace flas::ode {

template <class Field, class State, class Clock>
FLAS_ODE_STRICT_FP void first_step_vjp(Field& f, double cot_delta, double dir, const FirstStepRecord& r,
                                       const Tolerances& tol, int order, const State& y0, const State& f0,
                                       const State& probe_in, const State& probe_out, double t0, Clock& clock,
                                       int stages, State& cot_y0, State& cot_f0, std::int64_t& vjps) {
  using A = StateAlgebra<State>;
  const double atol = tol.atol, rtol = tol.rtol;
  const double N = double(ops::size(y0));
  auto sgn = [](double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0; };
  const double cot_h = dir * cot_delta;
  double cot_h0 = 0, cot_h1 = 0, cot_d0 = 0, cot_d1 = 0, cot_d2 = 0;
  if (r.took_100h0)
    cot_h0 += 100 * cot_h;
  else
    cot_h1 = cot_h;
  if (cot_h1 != 0) {
    if (r.h1_fixed) {
      if (r.h0 * 1e-3 > 1e-6) cot_h0 += 1e-3 * cot_h1;
    } else {  // h1 = (0.01/m)^(1/order), m = max(d1, d2)
      const double m = r.d1_is_max ? r.d1 : r.d2;
      const double cot_m = -cot_h1 * r.h1 / (double(order) * m);
      (r.d1_is_max ? cot_d1 : cot_d2) += cot_m;
    }
  }
  // d2 = n2/h0, n2 = ‖(f1_s − f0_s)/s‖
  const double n2 = r.d2 * r.h0;
  if (cot_d2 != 0 && n2 > 0) {
    cot_h0 -= cot_d2 * r.d2 / r.h0;
    const double c = cot_d2 / r.h0 / (N * n2);
    State cot_f1 = ops::empty_like(y0);
    A::for_each(
        [&](std::size_t) {
          return [c, atol, rtol, &sgn](auto& g1, auto& g0, auto& gy, const auto& y, const auto& a0, const auto& a1) {
            using E = std::remove_cvref_t<decltype(g1)>;
            const double s = atol + std::abs(double(y)) * rtol;
            const double du = (double(a1) - double(a0)) / s;  // = dir·u
            g1 = E(c * du / s);
            g0 = E(double(g0) - c * du / s);
            gy = E(double(gy) - c * du * du / s * rtol * sgn(double(y)));
          };
        },
        cot_f1, cot_f0, cot_y0, y0, f0, probe_out);
    // f1 = f(t0 + dir·h0, y0 + dir·h0·f0)
    State cot_in = ops::empty_like(y0);
    std::vector<double> cot_t(ops::rows(y0));
    const EvalContext ctx{0, -1, stages, -1, EvalPhase::first_step_probe};
    f.vjp(probe_in, clock.at(t0 + dir * r.h0), ctx, cot_f1, cot_in, std::span<double>(cot_t));
    ++vjps;
    double st = 0;
    for (double v : cot_t) st += v;
    cot_h0 += dir * st + dir * ops::dot(cot_in, f0);
    ops::axpy(cot_y0, 1.0, cot_in);
    ops::axpy(cot_f0, dir * r.h0, cot_in);
  }
  if (!r.h0_fixed && cot_h0 != 0) {  // h0 = 0.01·d0/d1
    cot_d0 += cot_h0 * 0.01 / r.d1;
    cot_d1 -= cot_h0 * r.h0 / r.d1;
  }
  if (cot_d1 != 0 && r.d1 > 0) {  // d1 = ‖f0/s‖
    const double c = cot_d1 / (N * r.d1);
    A::for_each(
        [&](std::size_t) {
          return [c, atol, rtol, &sgn](auto& g0, auto& gy, const auto& y, const auto& a0) {
            using E = std::remove_cvref_t<decltype(g0)>;
            const double s = atol + std::abs(double(y)) * rtol;
            const double v = double(a0) / s;
            g0 = E(double(g0) + c * v / s);
            gy = E(double(gy) - c * v * v / s * rtol * sgn(double(y)));
          };
        },
        cot_f0, cot_y0, y0, f0);
  }
  if (cot_d0 != 0 && r.d0 > 0) {  // d0 = ‖y0/s‖, ∂(y/s)/∂y = atol/s²
    const double c = cot_d0 / (N * r.d0);
    A::for_each(
        [&](std::size_t) {
          return [c, atol, rtol](auto& gy, const auto& y) {
            using E = std::remove_cvref_t<decltype(gy)>;
            const double s = atol + std::abs(double(y)) * rtol;
            gy = E(double(gy) + c * (double(y) / s) * atol / (s * s));
          };
        },
        cot_y0, y0);
  }
}

}  // namespace flas::ode
