// The same steppers on every state type with an algebra: flas::Tensor, Eigen (vector, column- and
// row-major matrix, array), xtensor (xarray, xtensor) and std::vector. A flow written once per state type
// gives the same numbers (bit for bit: the algebras do the same arithmetic in the same order), per-row
// coefficients follow Eigen rows in either storage order, and the gradient strategies run on Eigen states
// and Eigen parameters too.
#include <doctest/doctest.h>

#include <cstring>

#include "flas/ode/algebra_eigen.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/algebra_xtensor.hpp"
#include "flas/ode/ode.hpp"

namespace {

using namespace flas;
using namespace flas::ode;

// Element i of each state type.
double& at(Tensor& x, std::size_t i) { return x.data<double>()[i]; }
double at(const Tensor& x, std::size_t i) { return x.data<double>()[i]; }
template <class S>
auto& at(S& x, std::size_t i) requires requires { x.data(); } { return x.data()[i]; }
template <class S>
auto at(const S& x, std::size_t i) requires requires { x.data(); } { return x.data()[i]; }

// A 2-D time-dependent flow (a damped rotation with a forcing term), written against at().
template <class S>
auto toy_field() {
  return make_field([](const S& h, double t, S& v) {
    const double y0 = at(h, 0), y1 = at(h, 1), w = 1 + 0.5 * std::cos(t);
    at(v, 0) = -0.2 * y0 - w * y1 + 0.1 * std::sin(2 * t);
    at(v, 1) = w * y0 - 0.2 * y1;
  });
}

template <class Method, class S>
std::vector<double> run(S y0) {
  at(y0, 0) = 1.0, at(y0, 1) = -0.5;
  auto f = toy_field<S>();
  std::vector<double> out;
  auto collect = [&](const auto& sol) {
    for (const auto& y : sol.ys) out.push_back(at(y, 0)), out.push_back(at(y, 1));
  };
  if constexpr (is_adaptive<Method>)
    collect(integrate<Method>(f, y0, Times{{0.0, 0.7, 2.0}}, Tolerances{.rtol = 1e-8, .atol = 1e-10}));
  else
    collect(integrate<Method>(f, y0, Times{{0.0, 0.7, 2.0}}, StepSize{0.1}));
  return out;
}

template <class Method>
void same_on_every_state_type() {
  const auto ref = run<Method>(Tensor::empty({2}, DType::F64));
  CHECK(run<Method>(Eigen::Vector2d()) == ref);
  CHECK(run<Method>(Eigen::VectorXd(2)) == ref);
  CHECK(run<Method>(Eigen::Array2d()) == ref);
  CHECK(run<Method>(Eigen::Matrix<double, 1, 2, Eigen::RowMajor>()) == ref);
  CHECK(run<Method>(xt::xarray<double>::from_shape({2})) == ref);
  CHECK(run<Method>(xt::xtensor<double, 1>::from_shape({2})) == ref);
  CHECK(run<Method>(std::vector<double>(2)) == ref);
}

}  // namespace

TEST_CASE("ode algebras: every method gives the same numbers on every state type") {
  same_on_every_state_type<Euler>();
  same_on_every_state_type<Midpoint>();
  same_on_every_state_type<Rk4Classic>();
  same_on_every_state_type<Rk4ThreeEighths>();
  same_on_every_state_type<Dopri5>();
}

TEST_CASE("ode algebras: per-row time follows Eigen rows in either storage order, and xtensor's first axis") {
  using ColMajor = Eigen::MatrixXd;
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::vector<double> T = {0.5, 1.0, 2.0};
  // v = −h·(1 + t_row): each row decays with its own clock.
  auto decay = [](const auto& h, RowTimes t, auto& v) {
    for (Eigen::Index r = 0; r < h.rows(); ++r)
      for (Eigen::Index c = 0; c < h.cols(); ++c) v(r, c) = -h(r, c) * (1 + t[std::size_t(r)]);
  };
  ColMajor a = ColMajor::Constant(3, 4, 1.0);
  RowMajor b = RowMajor::Constant(3, 4, 1.0);
  auto fa = make_field([&](const ColMajor& h, RowTimes t, ColMajor& v) { decay(h, t, v); });
  auto fb = make_field([&](const RowMajor& h, RowTimes t, RowMajor& v) { decay(h, t, v); });
  auto fx = make_field([](const xt::xtensor<double, 2>& h, RowTimes t, xt::xtensor<double, 2>& v) {
    for (std::size_t r = 0; r < h.shape()[0]; ++r)
      for (std::size_t c = 0; c < h.shape()[1]; ++c) v(r, c) = -h(r, c) * (1 + t[r]);
  });
  xt::xtensor<double, 2> x = xt::ones<double>({3, 4});
  const auto ya = integrate<Rk4ThreeEighths>(fa, a, PerRowTime<double>{T}, StepCount{40}).ys.back();
  const auto yb = integrate<Rk4ThreeEighths>(fb, b, PerRowTime<double>{T}, StepCount{40}).ys.back();
  const auto yx = integrate<Rk4ThreeEighths>(fx, x, PerRowTime<double>{T}, StepCount{40}).ys.back();
  for (int r = 0; r < 3; ++r) {
    const double exact = std::exp(-(T[std::size_t(r)] + 0.5 * T[std::size_t(r)] * T[std::size_t(r)]));
    for (int c = 0; c < 4; ++c) {
      CHECK(ya(r, c) == doctest::Approx(exact).epsilon(1e-5));
      CHECK(yb(r, c) == ya(r, c));
      CHECK(yx(std::size_t(r), std::size_t(c)) == ya(r, c));
    }
  }
}

namespace {

// A differentiable field on Eigen states with Eigen parameters: v = W·h + b·t.
struct EigenLinearField {
  using parameter_type = Eigen::MatrixXd;
  Eigen::MatrixXd W, b, gW, gb;
  void operator()(const Eigen::VectorXd& h, RowTimes t, const EvalContext&, Eigen::VectorXd& v) {
    v = W * h + b * t[0];
  }
  void vjp(const Eigen::VectorXd& h, RowTimes t, const EvalContext&, const Eigen::VectorXd& cv, Eigen::VectorXd& ch,
           std::span<double> ct) {
    ch = W.transpose() * cv;
    gW += cv * h.transpose();
    gb += cv * t[0];
    for (std::size_t r = 0; r < ct.size(); ++r) ct[r] = cv(Eigen::Index(r)) * b(Eigen::Index(r), 0);
  }
  template <class V>
  void for_each_parameter(V&& visit) {
    visit(std::string_view("W"), W, gW);
    visit(std::string_view("b"), b, gb);
  }
};

EigenLinearField linear_field() {
  EigenLinearField f;
  f.W.resize(3, 3);
  f.W << -0.5, 1.0, 0.2, -1.0, -0.3, 0.1, 0.3, -0.2, -0.4;
  f.b.resize(3, 1);
  f.b << 0.3, -0.1, 0.2;
  f.gW = Eigen::MatrixXd::Zero(3, 3);
  f.gb = Eigen::MatrixXd::Zero(3, 1);
  return f;
}

}  // namespace

TEST_CASE("ode algebras: gradient strategies on Eigen states and parameters") {
  Eigen::VectorXd y0(3);
  y0 << 1.0, -2.0, 0.5;
  std::vector<Eigen::VectorXd> cot(2, Eigen::VectorXd::Zero(3));
  cot[1] << 0.3, 0.7, -1.1;
  auto grads = [&](auto method, auto schedule, auto strategy) {
    EigenLinearField f = linear_field();
    auto sol = solve<decltype(method)>(f, y0, Times{{0.0, 1.5}}, schedule, strategy);
    const Eigen::VectorXd g = sol.backward(cot);
    return std::make_tuple(g, f.gW, f.gb);
  };
  const auto direct = grads(Rk4Classic{}, StepCount{30}, Direct{});
  const auto ckpt = grads(Rk4Classic{}, StepCount{30}, Checkpointed{.snapshots = 2});
  const auto back = grads(Rk4Classic{}, StepCount{30}, Backsolve{});
  const auto dopri = grads(Dopri5{}, Tolerances{.rtol = 1e-11, .atol = 1e-13}, Backsolve{});
  CHECK(std::get<0>(direct) == std::get<0>(ckpt));
  CHECK(std::get<1>(direct) == std::get<1>(ckpt));
  CHECK((std::get<0>(direct) - std::get<0>(back)).norm() < 1e-6);
  CHECK((std::get<1>(direct) - std::get<1>(back)).norm() < 1e-6);
  CHECK((std::get<2>(direct) - std::get<2>(back)).norm() < 1e-6);
  CHECK((std::get<0>(direct) - std::get<0>(dopri)).norm() < 1e-6);
  // The exact gradient of a linear system: y(1.5) = Φ·y0 + ..., ∂L/∂y0 = Φᵀ·cot.
  Eigen::MatrixXd A = linear_field().W * 1.5;
  Eigen::MatrixXd Phi = Eigen::MatrixXd::Identity(3, 3), term = Phi;
  for (int k = 1; k < 30; ++k) term = term * A / double(k), Phi += term;
  CHECK((std::get<0>(direct) - Phi.transpose() * cot[1]).norm() < 1e-6);
}
