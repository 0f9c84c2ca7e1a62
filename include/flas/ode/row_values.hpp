#pragma once
// RowValues: one number per row of a batched state, or one number for all rows (a span of size 1
// broadcasts). Times, step sizes and per-row coefficients travel as RowValues, so that the same
// stepper code serves a shared clock and FLAS's per-row flow time (DESIGN.md §3) without branches.
#include <cstddef>
#include <span>

#include "flas/core/error.hpp"

// Scalar time arithmetic and the algebra's element loops must not be contracted into fused
// multiply-adds: torchdiffeq and the FLAS reference round every product and sum separately, and the
// per-row Euler update has to match them bit for bit. GCC contracts even in ISO mode, so loops that do
// this arithmetic carry this attribute (it also covers lambdas inlined into them).
// Clang contracts only within one expression and honours a block-scoped pragma instead, placed at the
// start of the element operations (FLAS_ODE_STRICT_FP_BLOCK).
#ifndef FLAS_ODE_STRICT_FP
#if defined(__GNUC__) && !defined(__clang__)
#define FLAS_ODE_STRICT_FP __attribute__((optimize("fp-contract=off")))
#else
#define FLAS_ODE_STRICT_FP
#endif
#endif
#ifndef FLAS_ODE_STRICT_FP_BLOCK
#if defined(__clang__)
#define FLAS_ODE_STRICT_FP_BLOCK _Pragma("clang fp contract(off)")
#else
#define FLAS_ODE_STRICT_FP_BLOCK
#endif
#endif

namespace flas::ode {

class RowValues {
 public:
  RowValues() = default;
  // One value for every row. The referenced double must outlive the view.
  explicit RowValues(const double& all) : v_(&all, 1) {}
  explicit RowValues(std::span<const double> per_row) : v_(per_row) {
    FLAS_CHECK(!v_.empty(), "RowValues: empty span");
  }

  double operator[](std::size_t row) const { return v_.size() == 1 ? v_[0] : v_[row]; }
  bool uniform() const { return v_.size() == 1; }
  std::size_t size() const { return v_.size(); }
  std::span<const double> span() const { return v_; }
  // The single value of a uniform view (what a field with one time per call reads).
  double scalar() const {
    FLAS_CHECK(v_.size() == 1, "RowValues: rows carry different values (", v_.size(),
               " rows) but one value was asked for");
    return v_[0];
  }

 private:
  std::span<const double> v_;
};

// Times handed to a field: t[row].
using RowTimes = RowValues;

}  // namespace flas::ode
