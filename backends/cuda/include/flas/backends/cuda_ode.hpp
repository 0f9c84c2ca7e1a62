#pragma once
// ode::StateAlgebra<CudaTensor>: ODE states (F32 or F64) on the device, so that every stepper, loop and
// gradient strategy of flas/ode runs on them unchanged. What steppers call goes to device kernels
// (cuda_state_ops.hpp): scale_sum (every stage and update: y = x + Σ_j (a_j·dt[row])·k_j, the same
// roundings as on host tensors, so fixed-step solves agree bit for bit), set_zero, copy and the norms of
// adaptive steppers (deterministic, equal to the host algebras' up to the order of a double sum).
// for_each, which the algebra concept requires for arbitrary element operations (ops::scale,
// ops::all_finite), runs on the host: the states are read back, the host algebra applies the operation,
// and the states it may write are copied back — correct, synchronising, and slow; no stepper update
// takes that path.
#include <array>
#include <cmath>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "flas/backends/cuda.hpp"
#include "flas/backends/cuda_state_ops.hpp"
#include "flas/ode/algebra.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/row_values.hpp"

namespace flas::ode {

template <>
struct StateAlgebra<CudaTensor> {
  static CudaTensor empty_like(const CudaTensor& x) { return CudaTensor::empty(x.shape(), x.dtype()); }
  static CudaTensor zeros_like(const CudaTensor& x) {
    CudaTensor t = empty_like(x);
    cuda::set_zero(t);
    return t;
  }
  static void copy(CudaTensor& dst, const CudaTensor& src) { CudaBackend::copy(dst, src); }
  static void set_zero(CudaTensor& x) { cuda::set_zero(x); }
  static std::size_t rows(const CudaTensor& x) { return x.rank() == 0 ? 1 : std::size_t(x.dim(0)); }
  static std::size_t size(const CudaTensor& x) { return std::size_t(x.numel()); }
  static std::size_t bytes(const CudaTensor& x) { return x.bytes(); }

  // y = x + Σ_j (a_j·dt[row])·k_j; terms with a_j = 0 or no state are skipped, as ops::scale_sum does.
  static void scale_sum(CudaTensor& y, const CudaTensor* x, RowValues dt, std::span<const double> a,
                        std::span<const CudaTensor* const> k) {
    std::vector<double> used_a;
    std::vector<const CudaTensor*> used_k;
    for (std::size_t j = 0; j < a.size(); ++j)
      if (a[j] != 0.0 && k[j] != nullptr) used_a.push_back(a[j]), used_k.push_back(k[j]);
    if (used_k.empty()) {
      if (x) copy(y, *x);
      else set_zero(y);
      return;
    }
    const std::size_t table_rows = dt.uniform() ? 1 : rows(y), m = used_a.size();
    std::vector<double> coeff(table_rows * m);
    for (std::size_t r = 0; r < table_rows; ++r)
      for (std::size_t j = 0; j < m; ++j) coeff[r * m + j] = used_a[j] * dt[r];
    cuda::row_scaled_sum(y, x, coeff, used_k);
  }

  static constexpr bool rms_norms = true;
  static double dot(const CudaTensor& a, const CudaTensor& b) { return cuda::dot(a, b); }
  static double sum_sq(const CudaTensor& a) { return cuda::sum_sq(a); }
  static double max_abs(const CudaTensor& a) { return cuda::max_abs(a); }
  static double error_norm(const CudaTensor& err, const CudaTensor& y0, const CudaTensor& y1, double atol,
                           double rtol) {
    return err.numel() == 0 ? 0.0 : std::sqrt(cuda::error_norm_sum(err, y0, y1, atol, rtol) / double(err.numel()));
  }
  static double scaled_norm(const CudaTensor& x, const CudaTensor* xm, const CudaTensor& y0, double atol,
                            double rtol) {
    return x.numel() == 0 ? 0.0 : std::sqrt(cuda::scaled_norm_sum(x, xm, y0, atol, rtol) / double(x.numel()));
  }

  template <class RowOp, class... Ss>
  static void for_each(RowOp&& row_op, Ss&&... xs) {
    const std::array<const void*, sizeof...(Ss)> raw{xs.raw()...};
    for (std::size_t i = 0; i < raw.size(); ++i)
      for (std::size_t j = i + 1; j < raw.size(); ++j)
        FLAS_CHECK(raw[i] != raw[j], "ode: an element operation on device states got the same state twice");
    on_host(row_op, std::index_sequence_for<Ss...>{}, xs...);
  }

 private:
  template <class RowOp, class... Ss, std::size_t... I>
  static void on_host(RowOp& row_op, std::index_sequence<I...>, Ss&... xs) {
    std::array<Tensor, sizeof...(Ss)> host{CudaBackend::download(xs)...};
    StateAlgebra<Tensor>::for_each(row_op, as_state<Ss>(host[I])...);
    (write_back(xs, host[I]), ...);
  }
  template <class S>
  static decltype(auto) as_state(Tensor& t) {
    if constexpr (std::is_const_v<S>) return static_cast<const Tensor&>(t);
    else return static_cast<Tensor&>(t);
  }
  static void write_back(CudaTensor& device, const Tensor& host) { CudaBackend::copy(device, host); }
  static void write_back(const CudaTensor&, const Tensor&) {}
};

}  // namespace flas::ode
