#pragma once
// The operations steppers, loops and strategies use, derived from StateAlgebra<S>::for_each unless the
// specialisation provides its own member of the same name (a faster kernel, or a different norm such as
// the adjoint's mixed norm). Elementwise arithmetic happens in the state's element type: an f32 state
// computes y = x + c·k in f32, exactly as PyTorch does; reductions accumulate in double.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include "flas/ode/algebra.hpp"
#include "flas/ode/row_values.hpp"

namespace flas::ode::ops {

template <class S>
using Alg = StateAlgebra<std::remove_cvref_t<S>>;

// Wraps an element operation that ignores rows (the op is used by reference: reductions accumulate).
template <class Op>
auto each(Op& op) {
  return [&op](std::size_t) -> Op& { return op; };
}

template <class S>
S zeros_like(const S& x) {
  return Alg<S>::zeros_like(x);
}
// Storage shaped like x whose contents will be overwritten before being read.
template <class S>
S empty_like(const S& x) {
  if constexpr (requires { Alg<S>::empty_like(x); })
    return Alg<S>::empty_like(x);
  else
    return Alg<S>::zeros_like(x);
}
template <class S>
void copy(S& dst, const S& src) {
  if (&dst != &src) Alg<S>::copy(dst, src);
}
template <class S>
std::size_t rows(const S& x) {
  return Alg<S>::rows(x);
}
template <class S>
std::size_t size(const S& x) {
  return Alg<S>::size(x);
}
template <class S>
std::size_t bytes(const S& x) {
  return Alg<S>::bytes(x);
}

template <class S>
void set_zero(S& x) {
  if constexpr (requires { Alg<S>::set_zero(x); }) {
    Alg<S>::set_zero(x);
  } else {
    auto op = [](auto& e) { e = 0; };
    Alg<S>::for_each(each(op), x);
  }
}

template <class S>
void scale(S& x, double a) {
  auto op = [a](auto& e) {
    FLAS_ODE_STRICT_FP_BLOCK
    e = static_cast<std::remove_cvref_t<decltype(e)>>(e * a);
  };
  Alg<S>::for_each(each(op), x);
}

namespace detail {

// y = base + Σ_j c_j(row)·k_j for M terms with nonzero coefficients, c_j(row) = a_j·dt[row] rounded to
// the element type once per row. WithBase = false: base is zero.
template <bool WithBase, std::size_t M, class S, std::size_t... J>
void scale_sum_kernel(S& y, const S* base, RowValues dt, const std::array<double, M>& a,
                      const std::array<const S*, M>& k, std::index_sequence<J...>) {
  auto row_op = [&](std::size_t r) {
    const double d = dt[r];
    return [c = std::array<double, M>{(a[J] * d)...}](auto& ye, const auto&... rest) {
      FLAS_ODE_STRICT_FP_BLOCK
      using E = std::remove_cvref_t<decltype(ye)>;
      if constexpr (WithBase) {
        // rest = (base element, k elements...)
        auto tup = std::forward_as_tuple(rest...);
        E acc = std::get<0>(tup);
        ((acc = acc + static_cast<E>(c[J]) * static_cast<E>(std::get<J + 1>(tup))), ...);
        ye = acc;
      } else {
        auto tup = std::forward_as_tuple(rest...);
        E acc = static_cast<E>(c[0]) * static_cast<E>(std::get<0>(tup));
        ((J == 0 ? void() : void(acc = acc + static_cast<E>(c[J]) * static_cast<E>(std::get<J>(tup)))), ...);
        ye = acc;
      }
    };
  };
  if constexpr (WithBase)
    Alg<S>::for_each(row_op, y, *base, *k[J]...);
  else
    Alg<S>::for_each(row_op, y, *k[J]...);
}

template <bool WithBase, std::size_t M, class S>
void scale_sum_fixed(S& y, const S* base, RowValues dt, const double* a, const S* const* k) {
  std::array<double, M> aa{};
  std::array<const S*, M> kk{};
  for (std::size_t j = 0; j < M; ++j) aa[j] = a[j], kk[j] = k[j];
  scale_sum_kernel<WithBase, M>(y, base, dt, aa, kk, std::make_index_sequence<M>{});
}

template <bool WithBase, class S>
void scale_sum_chunk(S& y, const S* base, RowValues dt, const double* a, const S* const* k, std::size_t m) {
  switch (m) {
    case 1: return scale_sum_fixed<WithBase, 1>(y, base, dt, a, k);
    case 2: return scale_sum_fixed<WithBase, 2>(y, base, dt, a, k);
    case 3: return scale_sum_fixed<WithBase, 3>(y, base, dt, a, k);
    case 4: return scale_sum_fixed<WithBase, 4>(y, base, dt, a, k);
    case 5: return scale_sum_fixed<WithBase, 5>(y, base, dt, a, k);
    case 6: return scale_sum_fixed<WithBase, 6>(y, base, dt, a, k);
    default: return scale_sum_fixed<WithBase, 7>(y, base, dt, a, k);
  }
}

}  // namespace detail

inline constexpr std::size_t max_fused_terms = 7;

// y = x + Σ_j (a_j·dt[row])·k_j. x == nullptr means zero. y may be x; y may be one of the k_j only when
// at most max_fused_terms terms are nonzero (longer sums run in chunks that accumulate in y).
// Terms with a_j == 0 or k_j == nullptr are skipped (a zero tableau entry costs nothing).
template <class S>
void scale_sum(S& y, const S* x, RowValues dt, std::span<const double> a, std::span<const S* const> k) {
  FLAS_CHECK(a.size() == k.size(), "scale_sum: ", a.size(), " coefficients for ", k.size(), " states");
  if constexpr (requires { Alg<S>::scale_sum(y, x, dt, a, k); }) {
    Alg<S>::scale_sum(y, x, dt, a, k);
  } else {
    double ac[2 * max_fused_terms];
    const S* kc[2 * max_fused_terms];
    std::size_t m = 0;
    const S* base = x;
    auto flush = [&] {
      if (m == 0) return;
      if (base)
        detail::scale_sum_chunk<true>(y, base, dt, ac, kc, m);
      else
        detail::scale_sum_chunk<false>(y, static_cast<const S*>(nullptr), dt, ac, kc, m);
      base = &y;  // later chunks accumulate in place
      m = 0;
    };
    bool any = false;
    for (std::size_t j = 0; j < a.size(); ++j) {
      if (a[j] == 0.0 || k[j] == nullptr) continue;
      ac[m] = a[j];
      kc[m] = k[j];
      ++m;
      any = true;
      if (m == max_fused_terms) flush();
    }
    if (!any) {
      if (x)
        ops::copy(y, *x);
      else
        ops::set_zero(y);
      return;
    }
    flush();
  }
}

// Convenience forms.
template <class S>
void scale_sum(S& y, const S* x, RowValues dt, std::initializer_list<double> a,
               std::initializer_list<const S*> k) {
  scale_sum(y, x, dt, std::span<const double>(a.begin(), a.size()), std::span<const S* const>(k.begin(), k.size()));
}
// y += a[row]·x
template <class S>
void axpy(S& y, RowValues a, const S& x) {
  const double one = 1.0;
  const S* kp = &x;
  scale_sum(y, &y, a, std::span<const double>(&one, 1), std::span<const S* const>(&kp, 1));
}
template <class S>
void axpy(S& y, double a, const S& x) {
  axpy(y, RowValues(a), x);
}

// ---- reductions ------------------------------------------------------------------------------------
// Elementwise terms are computed in the element type (as PyTorch does for f32 states), sums in double
// lanes (detail::LaneSum): the same numbers in the same order on every algebra.

namespace detail {
using ode::detail::error_term;
using ode::detail::LaneSum;
using ode::detail::scaled_term;
template <class E>
using elem_t = std::remove_cvref_t<E>;
}  // namespace detail

template <class S>
double dot(const S& a, const S& b) {
  if constexpr (requires { Alg<S>::dot(a, b); }) {
    return Alg<S>::dot(a, b);
  } else {
    detail::LaneSum sum;
    auto op = [&sum](const auto& x, const auto& y) { sum.add(double(x) * double(y)); };
    Alg<S>::for_each(each(op), a, b);
    return sum.total();
  }
}
template <class S>
double sum_sq(const S& a) {
  if constexpr (requires { Alg<S>::sum_sq(a); }) {
    return Alg<S>::sum_sq(a);
  } else {
    detail::LaneSum sum;
    auto op = [&sum](const auto& x) { sum.add(double(x) * double(x)); };
    Alg<S>::for_each(each(op), a);
    return sum.total();
  }
}
template <class S>
double max_abs(const S& a) {
  if constexpr (requires { Alg<S>::max_abs(a); }) {
    return Alg<S>::max_abs(a);
  } else {
    double m = 0;
    auto op = [&m](const auto& x) { m = std::max(m, std::abs(double(x))); };
    Alg<S>::for_each(each(op), a);
    return m;
  }
}
template <class S>
double rms(const S& a) {
  const std::size_t n = ops::size(a);
  return n == 0 ? 0.0 : std::sqrt(sum_sq(a) / double(n));
}
template <class S>
bool all_finite(const S& a) {
  bool ok = true;
  auto op = [&ok](const auto& x) { ok = ok && std::isfinite(double(x)); };
  Alg<S>::for_each(each(op), a);
  return ok;
}

// The error ratio of an embedded pair (torchdiffeq's _compute_error_ratio with the RMS norm):
// ‖err / (atol + rtol·max(|y0|, |y1|))‖.
template <class S>
double error_norm(const S& err, const S& y0, const S& y1, double atol, double rtol) {
  if constexpr (requires { Alg<S>::error_norm(err, y0, y1, atol, rtol); }) {
    return Alg<S>::error_norm(err, y0, y1, atol, rtol);
  } else {
    detail::LaneSum sum;
    auto op = [&sum, atol, rtol](const auto& e, const auto& a, const auto& b) {
      sum.add(detail::error_term<detail::elem_t<decltype(e)>>(e, a, b, atol, rtol));
    };
    Alg<S>::for_each(each(op), err, y0, y1);
    const std::size_t n = ops::size(err);
    return n == 0 ? 0.0 : std::sqrt(sum.total() / double(n));
  }
}

// ‖(x − x_minus) / (atol + rtol·|y0|)‖ (Hairer's initial-step norms); x_minus == nullptr means zero.
template <class S>
double scaled_norm(const S& x, const S* x_minus, const S& y0, double atol, double rtol) {
  if constexpr (requires { Alg<S>::scaled_norm(x, x_minus, y0, atol, rtol); }) {
    return Alg<S>::scaled_norm(x, x_minus, y0, atol, rtol);
  } else {
    detail::LaneSum sum;
    if (x_minus) {
      auto op = [&sum, atol, rtol](const auto& a, const auto& b, const auto& y) {
        sum.add(detail::scaled_term<detail::elem_t<decltype(a)>>(a, b, y, atol, rtol));
      };
      Alg<S>::for_each(each(op), x, *x_minus, y0);
    } else {
      auto op = [&sum, atol, rtol](const auto& a, const auto& y) {
        using E = detail::elem_t<decltype(a)>;
        sum.add(detail::scaled_term<E>(a, E(0), y, atol, rtol));
      };
      Alg<S>::for_each(each(op), x, y0);
    }
    const std::size_t n = ops::size(x);
    return n == 0 ? 0.0 : std::sqrt(sum.total() / double(n));
  }
}

// Whether the norms above are the RMS ones (the first-step gradient in direct mode assumes so). A state
// type overriding scaled_norm says so with `static constexpr bool rms_norms = true;`.
template <class S>
inline constexpr bool has_rms_norms = [] {
  if constexpr (requires { Alg<S>::rms_norms; })
    return bool(Alg<S>::rms_norms);
  else
    return !requires(const S& x) { Alg<S>::scaled_norm(x, &x, x, 0.0, 0.0); };
}();

}  // namespace flas::ode::ops
