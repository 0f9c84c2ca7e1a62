// Observed order of convergence: the global error at T of each method on y' = (1 + cos t)·A·y, whose
// solution is y(t) = exp((t + sin t)·A)·y0 (A = [[a, −b], [b, a]] commutes with itself at all times), falls
// at the method's nominal order (within 0.2) as the step is halved. The time dependence checks the stage
// times as well as the stage weights.
#include <doctest/doctest.h>

#include <cmath>

#include "ode_test_util.hpp"

namespace {

using namespace flas;
using namespace flas::ode;

constexpr double a = -0.3, b = 1.0, T = 2.0;

auto rotation_field() {
  return make_field([](const Tensor& h, double t, Tensor& v) {
    const double* y = h.data<double>();
    double* o = v.data<double>();
    const double s = 1 + std::cos(t);
    o[0] = s * (a * y[0] - b * y[1]);
    o[1] = s * (b * y[0] + a * y[1]);
  });
}

double error_at_T(const Tensor& y) {
  const double s = T + std::sin(T), r = std::exp(a * s), c = std::cos(b * s), n = std::sin(b * s);
  const double e0 = r * (c * 1.0 - n * 0.5), e1 = r * (n * 1.0 + c * 0.5);
  return std::hypot(y.data<double>()[0] - e0, y.data<double>()[1] - e1);
}

Tensor y0() {
  Tensor y = Tensor::empty({1, 2}, DType::F64);
  y.data<double>()[0] = 1.0, y.data<double>()[1] = 0.5;
  return y;
}

template <class Method>
double error_with(std::int64_t n) {
  auto f = rotation_field();
  if constexpr (is_adaptive<Method>) {
    // Constant steps: accept everything, never change dt.
    Tolerances tol{.rtol = 1e10, .atol = 1e10, .first_step = T / double(n), .ifactor = 1.0};
    return error_at_T(integrate<Method>(f, y0(), Times{{0.0, T}}, tol).ys.back());
  } else {
    return error_at_T(integrate<Method>(f, y0(), Times{{0.0, T}}, StepCount{n}).ys.back());
  }
}

// Least-squares slope of log(error) against log(step) over successive halvings.
template <class Method>
double observed_order(std::int64_t n0, int halvings) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i <= halvings; ++i) {
    const double x = std::log(T / double(n0 << i)), y = std::log(error_with<Method>(n0 << i));
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double m = halvings + 1;
  return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

template <class Method>
void check_order(std::int64_t n0, int halvings) {
  const double p = observed_order<Method>(n0, halvings);
  MESSAGE(std::string(Method::name) << ": observed order " << p << " (nominal " << Method::tableau.order << ")");
  CHECK(std::abs(p - Method::tableau.order) < 0.2);
}

}  // namespace

TEST_CASE("ode convergence: observed order of every method is its nominal order") {
  check_order<Euler>(64, 4);
  check_order<Midpoint>(32, 4);
  check_order<Rk4Classic>(16, 4);
  check_order<Rk4ThreeEighths>(16, 4);
  check_order<Dopri5>(8, 4);
}

TEST_CASE("ode convergence: dopri5's error follows its tolerance") {
  auto f = rotation_field();
  double previous = 1;
  for (double rtol : {1e-5, 1e-7, 1e-9, 1e-11}) {
    auto sol = integrate<Dopri5>(f, y0(), Times{{0.0, T}}, Tolerances{.rtol = rtol, .atol = rtol * 1e-2});
    const double e = error_at_T(sol.ys.back());
    MESSAGE("dopri5 rtol " << rtol << ": error " << e << " in " << sol.stats.steps << " steps ("
                           << sol.stats.rejected << " rejected)");
    CHECK(e < 100 * rtol);
    CHECK(e < previous);
    previous = e;
  }
}
