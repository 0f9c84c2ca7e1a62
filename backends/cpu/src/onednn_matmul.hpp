#pragma once
// Prefill-sized matmuls through oneDNN: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias), y in f32, with a
// primitive cache keyed by the full shape and strides. The only unit that includes oneDNN's headers.
#include <cstdint>

namespace flas::cpu_detail {

enum class MatmulType : std::uint8_t {
  f32,   // f32 activations × f32 weights (exact)
  bf16,  // bf16 activations × bf16 weights, f32 accumulation (fast mode)
};

struct MatmulShape {
  std::int64_t M = 0, N = 0, K = 0;
  std::int64_t ldx = 0;  // row stride of x (elements)
  std::int64_t ldw = 0;  // row stride of w (elements)
  std::int64_t ldy = 0;  // row stride of y (elements)
  MatmulType type = MatmulType::f32;
  bool bias = false;
  bool accumulate = false;  // y += x·wᵀ instead of y = x·wᵀ (a K-split's later parts)
  // Operands stored the other way round (the backward's products read them in place, no transposed copy):
  bool x_kmajor = false;  // x stored as [K, M] with row stride ldx (dyᵀ in dW = dyᵀ·x)
  bool w_kmajor = false;  // w stored as [K, N] with row stride ldw (W itself in dx = dy·W)
};

// Runs one matmul on the calling thread's OpenMP team (all threads outside a parallel region, the
// calling thread alone inside one). Throws flas::Error if oneDNN rejects the problem.
void onednn_matmul(const MatmulShape& s, const void* x, const void* w, const float* bias, float* y);

// Whether oneDNN has an optimised (non-reference) implementation of `type` on this CPU at the ISA
// oneDNN is allowed to use.
bool onednn_has_fast(MatmulType type);

}  // namespace flas::cpu_detail
