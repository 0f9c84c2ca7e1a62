#pragma once
// What every backward test needs: seeded random tensors, NaN-poisoned outputs, the objective
// L = Σ r ⊙ y, central finite differences in f64, and a log of the worst error seen per check (printed
// when the test binary exits, so a run shows how far each op is from its bound).
//
// Bounds (max|Δ| / max|ref|, the project's metric):
//   kFdBound   = 1e-6  f64 analytic VJP against central differences with step 1e-6·max(1, |x|): the FD
//                      truncation error is ~1e-12 and its rounding error ~1e-16·|L|/1e-6 ≈ 1e-9.
//   kF32Bound  = 1e-5  ScalarBackend<float> against ScalarBackend<double> on the same (f32-exact) inputs.
//   kF32AtMinus1e4 = 2e-3  the same for attention rows that see only masked keys under flas_additive: their
//                      scores are −1e4 + s, where f32's spacing is 2⁻¹⁰ ≈ 1e-3, so an f32 forward itself is
//                      only that close to f64 there.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>

#include "flas/backends/scalar.hpp"
#include "flas/backends/scalar_backward.hpp"
#include "flas/core/backward.hpp"
#include "support/compare.hpp"

namespace flas::backward_test {

using F64 = ScalarBackend<double>;
using F32 = ScalarBackend<float>;
using Ops64 = BackwardOps<F64>;
using Ops32 = BackwardOps<F32>;

inline constexpr double kFdBound = 1e-6;
inline constexpr double kF32Bound = 1e-5;
inline constexpr double kF32AtMinus1e4 = 2e-3;

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}
  // Uniform in [lo, hi); values are rounded to f32 first so that f32 and f64 runs see identical inputs.
  Tensor uniform(const Shape& shape, double lo = -1.0, double hi = 1.0, DType dtype = DType::F64) {
    Tensor t = Tensor::empty(shape, DType::F64);
    std::uniform_real_distribution<double> u(lo, hi);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = double(float(u(gen_)));
    return dtype == DType::F64 ? t : convert(t, dtype);
  }
  std::int64_t integer(std::int64_t lo, std::int64_t hi) {  // inclusive
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(gen_);
  }

 private:
  std::mt19937_64 gen_;
};

// A "write" output filled with NaN: any element the op forgets to write fails the comparison.
inline Tensor poisoned(const Shape& shape, DType dtype = DType::F64) {
  Tensor t = Tensor::empty(shape, dtype);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::F64) t.data<double>()[i] = std::numeric_limits<double>::quiet_NaN();
    else t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  }
  return t;
}

inline double weighted_sum(const Tensor& y, const Tensor& r) {
  FLAS_CHECK(y.numel() == r.numel(), "weighted_sum: ", y.shape(), " vs ", r.shape());
  double s = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) s += element_as_double(y, i) * element_as_double(r, i);
  return s;
}

// a − b in f64 (what an "accumulate" op added to its pre-filled gradient).
inline Tensor added(const Tensor& after, const Tensor& before) {
  Tensor d = Tensor::empty(after.shape(), DType::F64);
  for (std::int64_t i = 0; i < after.numel(); ++i)
    d.data<double>()[i] = element_as_double(after, i) - element_as_double(before, i);
  return d;
}

// ∂objective/∂x by central differences, perturbing x (F64) in place and restoring it exactly.
inline Tensor fd_gradient(Tensor& x, const std::function<double()>& objective, double rel_step = 1e-6) {
  Tensor g = Tensor::empty(x.shape(), DType::F64);
  double* xp = x.data<double>();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double saved = xp[i], h = rel_step * std::max(1.0, std::abs(saved));
    xp[i] = saved + h;
    const double up = objective();
    xp[i] = saved - h;
    const double down = objective();
    xp[i] = saved;
    g.data<double>()[i] = (up - down) / (2 * h);
  }
  return g;
}

// The worst error per check name, printed at exit.
class ErrorLog {
 public:
  static ErrorLog& instance() {
    static ErrorLog log;
    return log;
  }
  void note(const std::string& name, double err) {
    double& worst = worst_[name];
    worst = std::max(worst, err);
  }
  ~ErrorLog() {
    if (worst_.empty()) return;
    std::printf("\nworst max|Δ|/max|ref| per check:\n");
    for (const auto& [name, err] : worst_) std::printf("  %-40s %.3e\n", name.c_str(), err);
  }

 private:
  std::map<std::string, double> worst_;
};

inline void check_close(const std::string& name, const Tensor& got, const Tensor& ref, double bound) {
  const double err = testing::max_rel_diff(got, ref);
  ErrorLog::instance().note(name, err);
  INFO(name, ": max|Δ|/max|ref| = ", err, " (bound ", bound, ")");
  CHECK(err <= bound);
}

}  // namespace flas::backward_test
