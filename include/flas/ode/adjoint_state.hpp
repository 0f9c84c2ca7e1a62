#pragma once
// The augmented state of the continuous adjoint (torchdiffeq's odeint_adjoint): (a_t, y, a_y, a_θ),
// integrated backwards as one state. Its algebra applies every operation to each part, and its norm is
// torchdiffeq's default adjoint norm, max(|a_t|, ‖y‖, ‖a_y‖, max over parameter tensors of ‖a_p‖), each
// part with its own norm (RMS by default). a_t integrates −a_y·∂f/∂t from zero: torchdiffeq computes it
// even when the output times need no gradient, and through the norm it steers dopri5's step sizes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "flas/ode/algebra_ops.hpp"

namespace flas::ode {

template <class State, class P>
struct AdjointState {
  double a_t = 0;
  State y;
  State a_y;
  std::vector<P> a_theta;
};

template <class State, class P>
struct StateAlgebra<AdjointState<State, P>> {
  using A = AdjointState<State, P>;

  static A zeros_like(const A& x) { return make(x, [](const auto& c) { return ops::zeros_like(c); }); }
  static A empty_like(const A& x) { return make(x, [](const auto& c) { return ops::empty_like(c); }); }
  static void copy(A& dst, const A& src) {
    dst.a_t = src.a_t;
    ops::copy(dst.y, src.y);
    ops::copy(dst.a_y, src.a_y);
    for (std::size_t i = 0; i < src.a_theta.size(); ++i) ops::copy(dst.a_theta[i], src.a_theta[i]);
  }
  static void set_zero(A& x) {
    x.a_t = 0;
    ops::set_zero(x.y);
    ops::set_zero(x.a_y);
    for (auto& p : x.a_theta) ops::set_zero(p);
  }
  // One row: the augmented state shares one clock (per-row time is folded into its dynamics).
  static std::size_t rows(const A&) { return 1; }
  static std::size_t size(const A& x) {
    std::size_t n = 1 + ops::size(x.y) + ops::size(x.a_y);
    for (const auto& p : x.a_theta) n += ops::size(p);
    return n;
  }
  static std::size_t bytes(const A& x) {
    std::size_t n = sizeof(double) + ops::bytes(x.y) + ops::bytes(x.a_y);
    for (const auto& p : x.a_theta) n += ops::bytes(p);
    return n;
  }
  template <class RowOp, class... As>
  static void for_each(RowOp&& row_op, As&&... xs) {
    auto row0 = [&row_op](std::size_t) -> decltype(auto) { return row_op(0); };
    row_op(0)(xs.a_t...);
    StateAlgebra<State>::for_each(row0, xs.y...);
    StateAlgebra<State>::for_each(row0, xs.a_y...);
    const std::size_t np = detail::first_state(xs...).a_theta.size();
    for (std::size_t i = 0; i < np; ++i) StateAlgebra<P>::for_each(row0, xs.a_theta[i]...);
  }

  static double error_norm(const A& err, const A& y0, const A& y1, double atol, double rtol) {
    const double t_tol = atol + rtol * std::max(std::abs(y0.a_t), std::abs(y1.a_t));
    double n = std::abs(err.a_t / t_tol);
    n = std::max(n, ops::error_norm(err.y, y0.y, y1.y, atol, rtol));
    n = std::max(n, ops::error_norm(err.a_y, y0.a_y, y1.a_y, atol, rtol));
    for (std::size_t i = 0; i < err.a_theta.size(); ++i)
      n = std::max(n, ops::error_norm(err.a_theta[i], y0.a_theta[i], y1.a_theta[i], atol, rtol));
    return n;
  }
  static double scaled_norm(const A& x, const A* xm, const A& y0, double atol, double rtol) {
    double n = std::abs((x.a_t - (xm ? xm->a_t : 0.0)) / (atol + std::abs(y0.a_t) * rtol));
    n = std::max(n, ops::scaled_norm(x.y, xm ? &xm->y : nullptr, y0.y, atol, rtol));
    n = std::max(n, ops::scaled_norm(x.a_y, xm ? &xm->a_y : nullptr, y0.a_y, atol, rtol));
    for (std::size_t i = 0; i < x.a_theta.size(); ++i)
      n = std::max(n, ops::scaled_norm(x.a_theta[i], xm ? &xm->a_theta[i] : nullptr, y0.a_theta[i], atol, rtol));
    return n;
  }

 private:
  template <class Fn>
  static A make(const A& x, Fn fn) {
    A out{0.0, fn(x.y), fn(x.a_y), {}};
    out.a_theta.reserve(x.a_theta.size());
    for (const auto& p : x.a_theta) out.a_theta.push_back(fn(p));
    return out;
  }
};

}  // namespace flas::ode
