// Host side of cuda_state_ops.hpp: checks, the coefficient table's trip to the device, chunks of terms,
// and the final (ordered, double) combination of per-block reduction results.
#include <algorithm>
#include <vector>

#include "caching_allocator.hpp"
#include "flas/backends/cuda_state_ops.hpp"
#include "op_support.hpp"
#include "runtime.hpp"

namespace flas::cuda {
namespace {

using namespace cuda_detail;
namespace k = cuda_kernels;

bool is_f64(const CudaTensor& x, const char* op) {
  FLAS_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::F64, op, ": a state must be F32 or F64, got ",
             dtype_name(x.dtype()));
  return x.dtype() == DType::F64;
}

void expect_like(const CudaTensor& x, const CudaTensor& like, const char* op) {
  FLAS_CHECK(x.numel() == like.numel() && x.dtype() == like.dtype(), op, ": states ", x.shape(), " ",
             dtype_name(x.dtype()), " and ", like.shape(), " ", dtype_name(like.dtype()), " differ");
}

double reduce(k::StateReduction kind, const CudaTensor& a, const CudaTensor* b, const CudaTensor* c, double atol,
              double rtol, const char* op) {
  const bool f64 = is_f64(a, op);
  if (b) expect_like(*b, a, op);
  if (c) expect_like(*c, a, op);
  if (a.numel() == 0) return 0.0;
  const cudaStream_t s = current_stream();
  const int blocks = k::state_reduce_blocks(a.numel());
  const Scratch<double> partial = scratch<double>(blocks, s);
  k::state_reduce(kind, a.raw(), b ? b->raw() : nullptr, c ? c->raw() : nullptr, atol, rtol, a.numel(), f64,
                  partial.ptr, s);
  std::vector<double> host(static_cast<std::size_t>(blocks));
  copy_to_host(host.data(), partial.ptr, host.size() * sizeof(double), s);
  double total = 0.0;
  for (double v : host) total = kind == k::StateReduction::max_abs ? std::max(total, v) : total + v;
  return total;
}

}  // namespace

void row_scaled_sum(CudaTensor& y, const CudaTensor* x, std::span<const double> coeff,
                    std::span<const CudaTensor* const> terms) {
  const bool f64 = is_f64(y, "row_scaled_sum");
  const std::int64_t rows = y.rank() == 0 ? 1 : y.dim(0), n = y.numel(), per_row = rows ? n / rows : 0;
  const std::size_t m = terms.size();
  FLAS_CHECK(m > 0 && (coeff.size() == m || coeff.size() == std::size_t(rows) * m), "row_scaled_sum: ", coeff.size(),
             " coefficients for ", m, " terms over ", rows, " rows");
  if (x) expect_like(*x, y, "row_scaled_sum");
  for (const CudaTensor* t : terms) {
    FLAS_CHECK(t, "row_scaled_sum: a null term");
    expect_like(*t, y, "row_scaled_sum");
  }
  if (n == 0) return;
  const bool uniform = coeff.size() == m;
  const std::int64_t table_rows = uniform ? 1 : rows;
  const cudaStream_t s = current_stream();
  // Chunks of up to kScaledSumMaxTerms terms; later chunks add to y, rounding exactly as one long sum.
  const void* base = x ? x->raw() : nullptr;
  for (std::size_t j0 = 0; j0 < m; j0 += k::kScaledSumMaxTerms) {
    const std::size_t mc = std::min<std::size_t>(k::kScaledSumMaxTerms, m - j0);
    std::vector<double> table(static_cast<std::size_t>(table_rows) * mc);
    std::vector<const void*> ptrs(mc);
    for (std::int64_t r = 0; r < table_rows; ++r)
      for (std::size_t j = 0; j < mc; ++j) table[std::size_t(r) * mc + j] = coeff[std::size_t(r) * m + j0 + j];
    for (std::size_t j = 0; j < mc; ++j) ptrs[j] = terms[j0 + j]->raw();
    const Scratch<double> dev_table = scratch<double>(std::int64_t(table.size()), s);
    copy_to_device(dev_table.ptr, table.data(), table.size() * sizeof(double), s);
    k::row_scaled_sum(y.raw(), base, ptrs.data(), int(mc), dev_table.ptr, uniform, rows, per_row, f64, s);
    base = y.raw();
  }
}

void set_zero(CudaTensor& x) {
  if (x.bytes()) FLAS_CUDA(cudaMemsetAsync(x.raw(), 0, x.bytes(), current_stream()));
}

double dot(const CudaTensor& a, const CudaTensor& b) {
  return reduce(k::StateReduction::dot, a, &b, nullptr, 0, 0, "dot");
}
double sum_sq(const CudaTensor& a) { return reduce(k::StateReduction::sum_sq, a, nullptr, nullptr, 0, 0, "sum_sq"); }
double max_abs(const CudaTensor& a) {
  return reduce(k::StateReduction::max_abs, a, nullptr, nullptr, 0, 0, "max_abs");
}
double error_norm_sum(const CudaTensor& err, const CudaTensor& y0, const CudaTensor& y1, double atol, double rtol) {
  return reduce(k::StateReduction::error_norm, err, &y0, &y1, atol, rtol, "error_norm");
}
double scaled_norm_sum(const CudaTensor& x, const CudaTensor* xm, const CudaTensor& y0, double atol, double rtol) {
  return xm ? reduce(k::StateReduction::scaled_norm, x, xm, &y0, atol, rtol, "scaled_norm")
            : reduce(k::StateReduction::scaled_norm_no_minus, x, nullptr, &y0, atol, rtol, "scaled_norm");
}

}  // namespace flas::cuda
