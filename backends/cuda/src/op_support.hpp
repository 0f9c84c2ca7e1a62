#pragma once
// Argument checks and small helpers shared by the host side of the ops. Messages name the op and the
// tensor as the scalar and CPU backends' do, so a failing model call reads the same on every backend.
#include <cstddef>
#include <cstdint>

#include "flas/backends/cuda.hpp"
#include "kernels.hpp"
#include "transfers.hpp"

namespace flas::cuda_detail {

inline void expect_f32(const CudaTensor& t, const char* op, const char* what) {
  FLAS_CHECK(t.dtype() == DType::F32, op, ": ", what, " has dtype ", dtype_name(t.dtype()),
             ", expected F32 (CudaBackend's activation dtype)");
}

// "Rows" = all leading dimensions flattened (a rank-1 tensor is one row).
inline std::int64_t rows_of(const Shape& s) { return s.rank() <= 1 ? 1 : s.numel() / s[-1]; }
inline std::int64_t rows_of(const CudaTensor& t) { return rows_of(t.shape()); }

inline bool overlaps(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  const auto* pa = static_cast<const std::byte*>(a);
  const auto* pb = static_cast<const std::byte*>(b);
  return a_bytes && b_bytes && pa < pb + b_bytes && pb < pa + a_bytes;
}
inline bool overlaps(const CudaTensor& a, const CudaTensor& b) { return overlaps(a.raw(), a.bytes(), b.raw(), b.bytes()); }

// A weight-like operand on the device, checked to be F32 or BF16.
inline cuda_kernels::WeightPtr weight_ptr(const DeviceOperand& o, const char* op, const char* what) {
  FLAS_CHECK(o.dtype == DType::F32 || o.dtype == DType::BF16, op, ": ", what, " has dtype ", dtype_name(o.dtype),
             ", expected F32 or BF16");
  return {o.ptr, o.bf16()};
}

inline void expect_index_dtype(const cuda::Operand& o, const char* op, const char* what) {
  FLAS_CHECK(o.dtype() == DType::I64, op, ": ", what, " has dtype ", dtype_name(o.dtype()), ", expected I64");
}

// Sizes handed to cuBLAS and to kernel grids are 32-bit.
inline int as_int(std::int64_t v, const char* op) {
  FLAS_CHECK(v >= 0 && v <= 0x7fffffff, op, ": size ", v, " exceeds the 32-bit limit of the CUDA kernels");
  return int(v);
}

// The values of an I64 operand on the host (a device operand is read back: synchronises).
inline Tensor host_indices(const cuda::Operand& o) {
  return o.host() ? *o.host() : CudaBackend::download(*o.device());
}

}  // namespace flas::cuda_detail
