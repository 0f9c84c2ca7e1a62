// ode_toy: the same ODE solvers on a user's own state types. A damped, time-modulated rotation in 2-D,
//   y' = w(t)·A·y,  A = [[−0.3, −1], [1, −0.3]],  w(t) = 1 + 0.5·cos t,
// has the exact solution y(t) = exp((t + 0.5·sin t)·A)·y0. It is integrated to t = 4 with an
// Eigen::Vector2d state and an xt::xtensor<double, 1> state by every method; the table shows the end
// state, the error against the exact solution and the work done. Both state types give the same numbers:
// the steppers only see the state through its algebra (flas/ode/algebra_eigen.hpp, algebra_xtensor.hpp).
// Last, the gradient of y(4)·(1, 1) with respect to y0 by the three gradient strategies, on Eigen.
#include <cmath>
#include <cstdio>
#include <span>
#include <string>

#include "flas/ode/algebra_eigen.hpp"
#include "flas/ode/algebra_xtensor.hpp"
#include "flas/ode/ode.hpp"

namespace ode = flas::ode;

namespace {

constexpr double T = 4.0, a = -0.3, b = 1.0;

double w(double t) { return 1 + 0.5 * std::cos(t); }

std::pair<double, double> exact(double y0, double y1) {
  const double s = T + 0.5 * std::sin(T), r = std::exp(a * s), c = std::cos(b * s), n = std::sin(b * s);
  return {r * (c * y0 - n * y1), r * (n * y0 + c * y1)};
}

// The flow on each state type: a plain lambda of (h, t, v).
auto eigen_flow = ode::make_field([](const Eigen::Vector2d& h, double t, Eigen::Vector2d& v) {
  v << w(t) * (a * h(0) - b * h(1)), w(t) * (b * h(0) + a * h(1));
});
auto xtensor_flow = ode::make_field([](const xt::xtensor<double, 1>& h, double t, xt::xtensor<double, 1>& v) {
  v(0) = w(t) * (a * h(0) - b * h(1));
  v(1) = w(t) * (b * h(0) + a * h(1));
});

template <class Method, class Flow, class State>
void row(const char* state_name, Flow& flow, const State& y0) {
  const ode::Times times{{0.0, T}};
  auto sol = [&] {
    if constexpr (ode::is_adaptive<Method>)
      return ode::integrate<Method>(flow, y0, times, ode::Tolerances{.rtol = 1e-8, .atol = 1e-10});
    else
      return ode::integrate<Method>(flow, y0, times, ode::StepSize{0.05});
  }();
  const auto& y = sol.ys.back();
  const auto [e0, e1] = exact(1.0, 0.0);
  std::printf("%-9s %-8s (%+.10f, %+.10f)  %9.2e  %6lld %6lld\n", Method::name, state_name, double(y(0)),
              double(y(1)), std::hypot(double(y(0)) - e0, double(y(1)) - e1), static_cast<long long>(sol.stats.steps),
              static_cast<long long>(sol.stats.evaluations));
}

template <class Method>
void rows() {
  Eigen::Vector2d ye(1.0, 0.0);
  xt::xtensor<double, 1> yx = {1.0, 0.0};
  row<Method>("Eigen", eigen_flow, ye);
  row<Method>("xtensor", xtensor_flow, yx);
}

// The flow as a differentiable field on Eigen states; its one parameter is the damping a.
struct DampedRotation {
  using parameter_type = Eigen::VectorXd;
  Eigen::VectorXd damping = Eigen::VectorXd::Constant(1, a), grad = Eigen::VectorXd::Zero(1);
  void operator()(const Eigen::VectorXd& h, ode::RowTimes t, const ode::EvalContext&, Eigen::VectorXd& v) {
    const double d = damping(0), s = w(t[0]);
    v(0) = s * (d * h(0) - b * h(1));
    v(1) = s * (b * h(0) + d * h(1));
  }
  void vjp(const Eigen::VectorXd& h, ode::RowTimes t, const ode::EvalContext&, const Eigen::VectorXd& g,
           Eigen::VectorXd& gh, std::span<double> gt) {
    const double d = damping(0), s = w(t[0]), ds = -0.5 * std::sin(t[0]);
    gh(0) = s * (d * g(0) + b * g(1));
    gh(1) = s * (-b * g(0) + d * g(1));
    grad(0) += s * (g(0) * h(0) + g(1) * h(1));
    // One time per row: each of the two rows (elements) reports its own ∂/∂t.
    if (!gt.empty()) gt[0] = ds * g(0) * (d * h(0) - b * h(1)), gt[1] = ds * g(1) * (b * h(0) + d * h(1));
  }
  template <class V>
  void for_each_parameter(V&& visit) {
    visit(std::string_view("damping"), damping, grad);
  }
};

template <class Strategy>
void gradient_row(const char* name, Strategy strategy) {
  DampedRotation field;
  Eigen::VectorXd y0(2);
  y0 << 1.0, 0.0;
  auto sol = ode::solve<ode::Rk4ThreeEighths>(field, y0, ode::Times{{0.0, T}}, ode::StepSize{0.05}, strategy);
  std::vector<Eigen::VectorXd> cot{Eigen::VectorXd::Zero(2), Eigen::VectorXd::Ones(2)};
  const Eigen::VectorXd g = sol.backward(cot);
  std::printf("%-13s dL/dy0 = (%+.10f, %+.10f)  dL/da = %+.10f  kept for the gradient: %zu bytes\n", name, g(0),
              g(1), field.grad(0), sol.stats.gradient_bytes_peak);
}

}  // namespace

int main() {
  const auto [e0, e1] = exact(1.0, 0.0);
  std::printf("y' = (1 + 0.5 cos t) A y, y(0) = (1, 0), to t = %.0f; exact y = (%+.10f, %+.10f)\n\n", T, e0, e1);
  std::printf("%-9s %-8s %-30s %9s  %6s %6s\n", "method", "state", "y(T)", "|error|", "steps", "evals");
  rows<ode::Euler>();
  rows<ode::Midpoint>();
  rows<ode::Rk4Classic>();
  rows<ode::Rk4ThreeEighths>();
  rows<ode::Dopri5>();
  std::printf("\nL = y(T)·(1, 1), rk4_38 with h = 0.05, Eigen state and parameter:\n");
  gradient_row("direct", ode::Direct{});
  gradient_row("checkpointed", ode::Checkpointed{.snapshots = 3});
  gradient_row("backsolve", ode::Backsolve{});
}
