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
};

// Runs one matmul on the calling thread's OpenMP team (all threads outside a parallel region, the
// calling thread alone inside one). Throws flas::Error if oneDNN rejects the problem.
void onednn_matmul(const MatmulShape& s, const void* x, const void* w, const float* bias, float* y);

// Whether oneDNN has an optimised (non-reference) implementation of `type` on this CPU at the ISA
// oneDNN is allowed to use.
bool onednn_has_fast(MatmulType type);

}  // namespace flas::cpu_detail
