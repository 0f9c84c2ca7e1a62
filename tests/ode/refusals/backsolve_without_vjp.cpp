// Must not compile: a gradient strategy with a field that has no VJP.
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/ode.hpp"

int main() {
  auto f = flas::ode::make_field([](const flas::Tensor& h, double, flas::Tensor& v) { flas::ode::ops::copy(v, h); });
  flas::Tensor y = flas::zeros({2, 3}, flas::DType::F32);
  flas::ode::solve<flas::ode::Rk4Classic, flas::ode::Backsolve>(f, y, flas::ode::Times{{0.0, 1.0}},
                                                                flas::ode::StepSize{0.1});
}
