// Must not compile: a fixed-step method given tolerances.
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/ode.hpp"

int main() {
  auto f = flas::ode::make_field([](const flas::Tensor& h, double, flas::Tensor& v) { flas::ode::ops::copy(v, h); });
  flas::Tensor y = flas::zeros({2, 3}, flas::DType::F32);
  flas::ode::integrate<flas::ode::Euler>(f, y, flas::ode::Times{{0.0, 1.0}}, flas::ode::Tolerances{});
}
