// Must not compile: a field that keeps state per evaluation slot with an adaptive method.
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/ode.hpp"

struct PerStepCacheField {
  static constexpr bool needs_fixed_slots = true;
  void operator()(const flas::Tensor& h, flas::ode::RowTimes, const flas::ode::EvalContext&, flas::Tensor& v) {
    flas::ode::ops::copy(v, h);
  }
};

int main() {
  PerStepCacheField f;
  flas::Tensor y = flas::zeros({2, 3}, flas::DType::F32);
  flas::ode::integrate<flas::ode::Dopri5>(f, y, flas::ode::Times{{0.0, 1.0}}, flas::ode::Tolerances{});
}
