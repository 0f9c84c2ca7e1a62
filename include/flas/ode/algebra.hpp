#pragma once
// The state algebra: the one customisation point between steppers and state types (odeint's
// stepper/algebra split). A stepper never touches a state's elements; it calls the operations in
// algebra_ops.hpp, which are derived from the few members a StateAlgebra<S> specialisation provides:
//
//   static S           zeros_like(const S& x);          // a zero state shaped like x
//   static void        copy(S& dst, const S& src);       // same shape
//   static std::size_t rows(const S& x);                 // extent of the first dimension: rows carry their
//                                                        // own time and step size (per-row flow time)
//   static std::size_t size(const S& x);                 // number of elements
//   static std::size_t bytes(const S& x);                // bytes the state stores (memory accounting)
//   template <class RowOp, class... Ss>
//   static void for_each(RowOp&& row_op, Ss&&... xs);    // same-shaped states; for every element position,
//       // row_op(row) returns the element operation for that row, which is called with references to the
//       // elements at that position of every state (const where the state is const).
//
// Optional members override the derived operations where a state can do better: empty_like, set_zero,
// scale_sum, dot, sum_sq, max_abs, error_norm, scaled_norm (see algebra_ops.hpp). Adding a state type is
// a specialisation in its own header; no stepper, loop or strategy changes.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "flas/ode/row_values.hpp"

namespace flas::ode {

template <class S>
struct StateAlgebra;  // specialise for each state type

namespace detail {
// An element operation accepting any arity; used only to probe for_each in the concept below.
struct ProbeElementOp {
  template <class... E>
  void operator()(E&...) const {}
};
struct ProbeRowOp {
  ProbeElementOp operator()(std::size_t) const { return {}; }
};
}  // namespace detail

template <class S>
concept HasStateAlgebra = requires(const S& cx, S& x) {
  { StateAlgebra<S>::zeros_like(cx) } -> std::same_as<S>;
  StateAlgebra<S>::copy(x, cx);
  { StateAlgebra<S>::rows(cx) } -> std::convertible_to<std::size_t>;
  { StateAlgebra<S>::size(cx) } -> std::convertible_to<std::size_t>;
  { StateAlgebra<S>::bytes(cx) } -> std::convertible_to<std::size_t>;
  StateAlgebra<S>::for_each(detail::ProbeRowOp{}, x, cx);
};

namespace detail {

// The loop shared by every contiguous row-major state (flas::Tensor, xtensor, std::vector): rows outer,
// elements of a row inner, so that a row's coefficients are loop invariants and the inner loop vectorises.
template <class RowOp, class... P>
FLAS_ODE_STRICT_FP inline void row_major_loop(RowOp& row_op, std::size_t rows, std::size_t per_row, P*... p) {
  for (std::size_t r = 0; r < rows; ++r) {
    auto&& op = row_op(r);
    const std::size_t base = r * per_row;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep
#endif
    for (std::size_t i = 0; i < per_row; ++i) op(p[base + i]...);
  }
}

template <class S, class... Rest>
const S& first_state(const S& s, const Rest&...) {
  return s;
}

// Reductions add element i into lane i mod 8 and combine the lanes in a fixed order: every algebra then
// adds the same numbers in the same order (norms agree bit for bit across state types), and a contiguous
// loop over blocks of 8 vectorises without reassociation.
constexpr std::size_t reduction_lanes = 8;

inline double combine_lanes(const double* lane) {
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

struct LaneSum {
  double lane[reduction_lanes] = {};
  std::size_t i = 0;
  void add(double v) {
    lane[i % reduction_lanes] += v;
    ++i;
  }
  double total() const { return combine_lanes(lane); }
};

// ‖err / (atol + rtol·max(|y0|, |y1|))‖² term of one element, in the element type (as torchdiffeq).
template <class E>
double error_term(E e, E a, E b, double atol, double rtol) {
  FLAS_ODE_STRICT_FP_BLOCK
  const E tol = E(atol) + E(rtol) * std::max(std::abs(a), std::abs(b));
  const E r = e / tol;
  return double(r) * double(r);
}
// ‖(x − x_minus) / (atol + |y0|·rtol)‖² term of one element.
template <class E>
double scaled_term(E x, E xm, E y, double atol, double rtol) {
  FLAS_ODE_STRICT_FP_BLOCK
  const E r = (x - xm) / (E(atol) + std::abs(y) * E(rtol));
  return double(r) * double(r);
}

// Σ_i term(i) over i < n, lane by lane as LaneSum adds them. Terms go through a block buffer first, so
// that computing them and adding them to the lanes are two plain loops the compiler vectorises.
template <class Term>
FLAS_ODE_STRICT_FP inline double lane_reduce(std::size_t n, Term&& term) {
  constexpr std::size_t block = 256;
  double lane[reduction_lanes] = {};
  double buf[block];
  std::size_t i = 0;
  for (; i + block <= n; i += block) {
    for (std::size_t j = 0; j < block; ++j) buf[j] = term(i + j);
    for (std::size_t j = 0; j < block; j += reduction_lanes)
      for (std::size_t l = 0; l < reduction_lanes; ++l) lane[l] += buf[j + l];
  }
  for (; i < n; ++i) lane[i % reduction_lanes] += term(i);
  return combine_lanes(lane);
}

}  // namespace detail

// std::vector<float|double>: a 1-D state, every element its own row.
template <class T>
  requires std::is_floating_point_v<T>
struct StateAlgebra<std::vector<T>> {
  using V = std::vector<T>;
  static V zeros_like(const V& x) { return V(x.size(), T(0)); }
  static void copy(V& dst, const V& src) {
    FLAS_CHECK(dst.size() == src.size(), "copy: vector sizes ", dst.size(), " and ", src.size(), " differ");
    if (&dst != &src) std::copy(src.begin(), src.end(), dst.begin());
  }
  static std::size_t rows(const V& x) { return x.size(); }
  static std::size_t size(const V& x) { return x.size(); }
  static std::size_t bytes(const V& x) { return x.size() * sizeof(T); }
  template <class RowOp, class... Vs>
  static void for_each(RowOp&& row_op, Vs&&... xs) {
    const std::size_t n = detail::first_state(xs...).size();
    FLAS_CHECK(((xs.size() == n) && ...), "for_each: vector states of different sizes");
    detail::row_major_loop(row_op, n, 1, xs.data()...);
  }
};

}  // namespace flas::ode
