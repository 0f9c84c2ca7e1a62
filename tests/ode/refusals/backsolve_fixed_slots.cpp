// Must not compile: backsolve with a field that keeps state per forward evaluation slot.
#include <span>
#include <string_view>

#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/ode.hpp"

struct PerStepCacheField {
  using parameter_type = flas::Tensor;
  static constexpr bool needs_fixed_slots = true;
  void operator()(const flas::Tensor& h, flas::ode::RowTimes, const flas::ode::EvalContext&, flas::Tensor& v) {
    flas::ode::ops::copy(v, h);
  }
  void vjp(const flas::Tensor&, flas::ode::RowTimes, const flas::ode::EvalContext&, const flas::Tensor& cv,
           flas::Tensor& ch, std::span<double>) {
    flas::ode::ops::copy(ch, cv);
  }
  template <class V>
  void for_each_parameter(V&&) {}
};

int main() {
  PerStepCacheField f;
  flas::Tensor y = flas::zeros({2, 3}, flas::DType::F32);
  flas::ode::solve<flas::ode::Euler, flas::ode::Backsolve>(f, y, flas::ode::Times{{0.0, 1.0}}, flas::ode::StepCount{3});
}
