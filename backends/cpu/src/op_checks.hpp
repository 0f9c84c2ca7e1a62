#pragma once
// Argument checks and small helpers shared by the CPU ops. Messages name the op and the tensor, as the
// scalar backend's do, so a failing model call reads the same whichever backend runs it.
#include <cstdint>
#include <vector>

#include "flas/core/dtype.hpp"
#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"

namespace flas::cpu_detail {

inline void expect_f32(const Tensor& t, const char* op, const char* what) {
  FLAS_CHECK(t.dtype() == DType::F32, op, ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected F32");
}

inline void expect_same_numel(const Tensor& a, const Tensor& b, const char* op) {
  FLAS_CHECK(a.numel() == b.numel(), op, ": sizes ", a.shape(), " and ", b.shape(), " differ");
}

// "Rows" = all leading dimensions flattened (a rank-1 tensor is one row).
inline std::int64_t rows_of(const Tensor& t) { return t.rank() <= 1 ? 1 : t.numel() / t.dim(-1); }

// True when the byte ranges of two tensors overlap (an op writing one while reading the other must
// then go through a temporary).
inline bool overlaps(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const std::byte*>(a.raw());
  const auto* pb = static_cast<const std::byte*>(b.raw());
  return pa < pb + b.bytes() && pb < pa + a.bytes();
}

// A small F32 or BF16 vector (norm weight, gate) widened to f32 once per call, so inner loops see
// one dtype. Weights of this size are a few KB: the copy is noise next to the op.
inline std::vector<float> widen_to_f32(const Tensor& w, const char* op, const char* what) {
  std::vector<float> out(static_cast<std::size_t>(w.numel()));
  if (w.dtype() == DType::F32) {
    const float* p = w.data<float>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = p[i];
  } else if (w.dtype() == DType::BF16) {
    const bf16* p = w.data<bf16>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(p[i]);
  } else {
    fail(op, ": ", what, " has dtype ", dtype_name(w.dtype()), ", expected F32 or BF16");
  }
  return out;
}

}  // namespace flas::cpu_detail
