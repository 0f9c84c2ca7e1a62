#pragma once
// StateAlgebra for flas::Tensor on the host: F32 and F64 activations, contiguous row-major, rows = the
// first dimension (a FLAS state [B, S, H] has one flow time per batch row). Elementwise arithmetic is in
// the tensor's dtype, without fused multiply-adds, so the Euler update is PyTorch's h + dt·v bit for bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "flas/core/tensor.hpp"
#include "flas/ode/algebra.hpp"

namespace flas::ode {

template <>
struct StateAlgebra<Tensor> {
  static Tensor zeros_like(const Tensor& x) { return flas::zeros(x.shape(), x.dtype()); }
  static Tensor empty_like(const Tensor& x) { return Tensor::empty(x.shape(), x.dtype()); }
  static void copy(Tensor& dst, const Tensor& src) {
    FLAS_CHECK(dst.numel() == src.numel() && dst.dtype() == src.dtype(), "ode: copy of a ", src.shape(), " ",
               dtype_name(src.dtype()), " state into a ", dst.shape(), " ", dtype_name(dst.dtype()), " one");
    if (dst.raw() != src.raw()) std::memcpy(dst.raw(), src.raw(), src.bytes());
  }
  static void set_zero(Tensor& x) { std::memset(x.raw(), 0, x.bytes()); }
  static std::size_t rows(const Tensor& x) { return x.rank() == 0 ? 1 : std::size_t(x.dim(0)); }
  static std::size_t size(const Tensor& x) { return std::size_t(x.numel()); }
  static std::size_t bytes(const Tensor& x) { return x.bytes(); }

  // Reductions over contiguous storage in blocks of 8 lanes (detail::lane_reduce): vectorised, and the
  // same sums as the generic path.
  static constexpr bool rms_norms = true;
  static double dot(const Tensor& a, const Tensor& b) {
    return reduce([](auto x, auto y) { return double(x) * double(y); }, a, b);
  }
  static double sum_sq(const Tensor& a) {
    return reduce([](auto x) { return double(x) * double(x); }, a);
  }
  static double error_norm(const Tensor& err, const Tensor& y0, const Tensor& y1, double atol, double rtol) {
    const double s = reduce([atol, rtol](auto e, auto a, auto b) { return detail::error_term(e, a, b, atol, rtol); },
                            err, y0, y1);
    return err.numel() == 0 ? 0.0 : std::sqrt(s / double(err.numel()));
  }
  static double scaled_norm(const Tensor& x, const Tensor* xm, const Tensor& y0, double atol, double rtol) {
    const double s =
        xm ? reduce([atol, rtol](auto a, auto b, auto y) { return detail::scaled_term(a, b, y, atol, rtol); }, x, *xm, y0)
           : reduce([atol, rtol](auto a, auto y) { return detail::scaled_term(a, decltype(a)(0), y, atol, rtol); }, x, y0);
    return x.numel() == 0 ? 0.0 : std::sqrt(s / double(x.numel()));
  }

  template <class RowOp, class... Ts>
  static void for_each(RowOp&& row_op, Ts&&... xs) {
    const Tensor& first = detail::first_state(xs...);
    FLAS_CHECK(((xs.numel() == first.numel() && xs.dtype() == first.dtype()) && ...),
               "ode: states of different shapes or dtypes in one operation (first ", first.shape(), " ",
               dtype_name(first.dtype()), ")");
    const std::size_t r = rows(first), n = size(first), per_row = r == 0 ? 0 : n / r;
    switch (first.dtype()) {
      case DType::F32: return detail::row_major_loop(row_op, r, per_row, elements<float>(xs)...);
      case DType::F64: return detail::row_major_loop(row_op, r, per_row, elements<double>(xs)...);
      default: fail("ode: a state must be F32 or F64, got ", dtype_name(first.dtype()));
    }
  }

 private:
  template <class Term, class... Ts>
  static double reduce(Term term, const Ts&... xs) {
    const Tensor& first = detail::first_state(xs...);
    FLAS_CHECK(((xs.numel() == first.numel() && xs.dtype() == first.dtype()) && ...),
               "ode: states of different shapes or dtypes in one reduction");
    const std::size_t n = size(first);
    switch (first.dtype()) {
      case DType::F32: return reduce_typed<float>(term, n, xs.template data<float>()...);
      case DType::F64: return reduce_typed<double>(term, n, xs.template data<double>()...);
      default: fail("ode: a state must be F32 or F64, got ", dtype_name(first.dtype()));
    }
  }
  template <class E, class Term, class... P>
  static double reduce_typed(Term& term, std::size_t n, const P*... p) {
    return detail::lane_reduce(n, [&](std::size_t i) { return term(p[i]...); });
  }
  template <class E>
  static E* elements(Tensor& t) {
    return t.data<E>();
  }
  template <class E>
  static const E* elements(const Tensor& t) {
    return t.data<E>();
  }
};

}  // namespace flas::ode
