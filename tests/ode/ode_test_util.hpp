#pragma once
// Helpers shared by the ODE tests.
#include <cmath>
#include <random>
#include <vector>

#include "flas/backends/scalar.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/fields/time_mlp_field.hpp"
#include "flas/ode/ode.hpp"
#include "support/compare.hpp"

namespace flas::ode::testing {

inline Tensor random_tensor(const Shape& s, std::mt19937& rng, double scale = 1.0, DType d = DType::F64) {
  std::normal_distribution<double> n(0.0, scale);
  Tensor t = Tensor::empty(s, DType::F64);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = n(rng);
  return d == DType::F64 ? t : convert(t, d);
}

using MlpField = TimeMlpField<ScalarBackend<double>>;

inline MlpField random_mlp(std::int64_t D, std::int64_t H, std::mt19937& rng, double scale = 0.5) {
  return MlpField(random_tensor({H, D + 1}, rng, scale), random_tensor({H}, rng, scale),
                  random_tensor({D, H}, rng, scale), random_tensor({D}, rng, scale));
}

// Gradients the field holds, copied, in visiting order.
template <class F>
std::vector<Tensor> gradients(F& f) {
  std::vector<Tensor> g;
  f.for_each_parameter([&](std::string_view, Tensor&, Tensor& grad) { g.push_back(clone(grad)); });
  return g;
}

inline double max_rel(const Tensor& a, const Tensor& b) { return flas::testing::max_rel_diff(a, b); }

inline double max_rel(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, max_rel(a[i], b[i]));
  return m;
}

}  // namespace flas::ode::testing
