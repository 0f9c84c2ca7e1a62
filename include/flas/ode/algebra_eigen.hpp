#pragma once
// StateAlgebra for Eigen dense matrices and arrays (any storage order, fixed or dynamic size). Rows are
// Eigen rows: a column vector is a batch of one-element rows; a [B, H] matrix has one time per row.
// Include this header to integrate Eigen states; the rest of flas::ode never includes Eigen.
#include <Eigen/Core>

#include "flas/ode/algebra.hpp"

namespace flas::ode {

namespace detail {

template <class M>
struct EigenAlgebra {
  using Scalar = typename M::Scalar;
  static M zeros_like(const M& x) { return M::Zero(x.rows(), x.cols()); }
  static M empty_like(const M& x) { return M(x.rows(), x.cols()); }
  static void copy(M& dst, const M& src) {
    FLAS_CHECK(dst.rows() == src.rows() && dst.cols() == src.cols(), "ode: copy of a ", src.rows(), "x",
               src.cols(), " Eigen state into a ", dst.rows(), "x", dst.cols(), " one");
    dst = src;
  }
  static void set_zero(M& x) { x.setZero(); }
  static std::size_t rows(const M& x) { return std::size_t(x.rows()); }
  static std::size_t size(const M& x) { return std::size_t(x.size()); }
  static std::size_t bytes(const M& x) { return std::size_t(x.size()) * sizeof(Scalar); }

  template <class RowOp, class... Ms>
  FLAS_ODE_STRICT_FP static void for_each(RowOp&& row_op, Ms&&... xs) {
    const M& first = detail::first_state(xs...);
    const std::size_t r = std::size_t(first.rows()), c = std::size_t(first.cols());
    FLAS_CHECK(((std::size_t(xs.rows()) == r && std::size_t(xs.cols()) == c) && ...),
               "ode: Eigen states of different shapes in one operation");
    if constexpr (M::IsRowMajor) {
      row_major_loop(row_op, r, c, xs.data()...);
    } else {  // column-major: walk storage order, the row is the index within a column
      for (std::size_t j = 0; j < c; ++j)
        for (std::size_t i = 0; i < r; ++i) row_op(i)(xs.data()[j * r + i]...);
    }
  }
};

}  // namespace detail

template <class Scalar, int R, int C, int O, int MR, int MC>
struct StateAlgebra<Eigen::Matrix<Scalar, R, C, O, MR, MC>>
    : detail::EigenAlgebra<Eigen::Matrix<Scalar, R, C, O, MR, MC>> {};

template <class Scalar, int R, int C, int O, int MR, int MC>
struct StateAlgebra<Eigen::Array<Scalar, R, C, O, MR, MC>>
    : detail::EigenAlgebra<Eigen::Array<Scalar, R, C, O, MR, MC>> {};

}  // namespace flas::ode
