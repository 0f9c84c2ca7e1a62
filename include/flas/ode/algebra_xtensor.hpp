#pragma once
// StateAlgebra for xtensor containers (xt::xarray<T>, xt::xtensor<T, N>) in row-major layout. Rows are
// the first dimension, as for flas::Tensor. Include this header to integrate xtensor states; the rest of
// flas::ode never includes xtensor.
#include <algorithm>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

#include "flas/ode/algebra.hpp"

namespace flas::ode {

namespace detail {

template <class X>
struct XtensorAlgebra {
  using value_type = typename X::value_type;
  static X zeros_like(const X& x) {
    X z = X::from_shape(x.shape());
    std::fill(z.begin(), z.end(), value_type(0));
    return z;
  }
  static X empty_like(const X& x) { return X::from_shape(x.shape()); }
  static void copy(X& dst, const X& src) {
    FLAS_CHECK(dst.size() == src.size(), "ode: copy of an xtensor state of ", src.size(), " elements into one of ",
               dst.size());
    std::copy(src.data(), src.data() + src.size(), dst.data());
  }
  static std::size_t rows(const X& x) { return x.dimension() == 0 ? 1 : std::size_t(x.shape()[0]); }
  static std::size_t size(const X& x) { return std::size_t(x.size()); }
  static std::size_t bytes(const X& x) { return std::size_t(x.size()) * sizeof(value_type); }

  template <class RowOp, class... Xs>
  static void for_each(RowOp&& row_op, Xs&&... xs) {
    const X& first = detail::first_state(xs...);
    FLAS_CHECK(((xs.size() == first.size() && xs.layout() == xt::layout_type::row_major) && ...),
               "ode: xtensor states must be row-major and of one size in one operation");
    const std::size_t r = rows(first), n = size(first);
    row_major_loop(row_op, r, r == 0 ? 0 : n / r, xs.data()...);
  }
};

}  // namespace detail

template <class EC, xt::layout_type L, class SC, class Tag>
struct StateAlgebra<xt::xarray_container<EC, L, SC, Tag>>
    : detail::XtensorAlgebra<xt::xarray_container<EC, L, SC, Tag>> {};

template <class EC, std::size_t N, xt::layout_type L, class Tag>
struct StateAlgebra<xt::xtensor_container<EC, N, L, Tag>>
    : detail::XtensorAlgebra<xt::xtensor_container<EC, N, L, Tag>> {};

}  // namespace flas::ode
