#pragma once
// Device kernels for ODE states held in CudaTensors (F32 or F64): the fused per-row scaled sum every
// stepper is written in (y = x + Σ_j c_j(row)·k_j) and the reductions adaptive steppers need. The
// arithmetic is that of flas/ode/algebra_ops.hpp on host tensors — terms in the element type, each
// product and sum rounded separately, terms in order — so a fixed-step solve gives the same bits on
// either side. Reductions sum double terms per block, then the block sums on the host in block order:
// deterministic, but not the host algebras' 8-lane order (results differ in the last bits).
// cuda_ode.hpp turns these into ode::StateAlgebra<CudaTensor>; this header needs nothing from flas/ode.
#include <span>

#include "flas/backends/cuda.hpp"

namespace flas::cuda {

// y = x + Σ_j coeff[r·m + j]·k_j for each row r < y.dim(0) (m = k.size(); x == nullptr: no base term,
// the sum starts from the first product). coeff holds a_j·dt[r] in double; each is rounded to the
// element type once, as the host algebra does. y may alias x or any k_j.
void row_scaled_sum(CudaTensor& y, const CudaTensor* x, std::span<const double> coeff,
                    std::span<const CudaTensor* const> k);
void set_zero(CudaTensor& x);

double dot(const CudaTensor& a, const CudaTensor& b);
double sum_sq(const CudaTensor& a);
double max_abs(const CudaTensor& a);
// Σ_i (e_i / (atol + rtol·max(|a_i|, |b_i|)))², each term in the element type then squared in double.
double error_norm_sum(const CudaTensor& err, const CudaTensor& y0, const CudaTensor& y1, double atol, double rtol);
// Σ_i ((x_i − xm_i) / (atol + |y_i|·rtol))² (xm == nullptr: zero).
double scaled_norm_sum(const CudaTensor& x, const CudaTensor* xm, const CudaTensor& y0, double atol, double rtol);

}  // namespace flas::cuda
