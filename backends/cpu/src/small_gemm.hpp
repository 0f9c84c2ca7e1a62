#pragma once
// Decode-sized matmuls (a handful of activation rows against a large weight): the weight is streamed
// from memory exactly once, so these kernels are bound by read bandwidth, not arithmetic. One
// implementation per instruction set, chosen at run time; each lives in its own translation unit
// compiled with its own ISA flags. This header is deliberately C-like (no templates, no std types):
// the kernel units include nothing else, so no inline function compiled for AVX-512 can be picked by
// the linker for a caller running on a CPU without it.
#include <cstdint>

namespace flas::cpu_detail {

// y[m * ldy + n] = Σ_k x[m, k] · w[n, k] (+ bias[n]) for m < M and the rows n a call covers.
struct SmallGemm {
  const float* x = nullptr;     // activations in the kernel's packed layout (see SmallGemmKernel::pack)
  std::int64_t M = 0, K = 0;
  const void* w = nullptr;      // [N, K] row-major, F32 or BF16
  bool w_bf16 = false;
  const float* bias = nullptr;  // [N] or nullptr
  float* y = nullptr;
  std::int64_t ldy = 0;         // row stride of y (= N)
};

struct SmallGemmKernel {
  const char* name;
  std::int64_t max_m;  // largest M one call handles (callers split larger M)
  // Floats needed for the packed activations.
  std::int64_t (*packed_size)(std::int64_t M, std::int64_t K, bool w_bf16);
  // Writes x [M, K] row-major into the layout `run` reads.
  void (*pack)(const float* x, std::int64_t M, std::int64_t K, bool w_bf16, float* out);
  // Output columns (weight rows) [n0, n1).
  void (*run)(const SmallGemm& g, std::int64_t n0, std::int64_t n1);
  // dst[i] = f32(src[i]) for bf16 bits src (exact): the prefill path widens weight tiles with it.
  void (*widen_bf16)(const std::uint16_t* src, float* dst, std::int64_t n);
};

extern const SmallGemmKernel small_gemm_generic;
#if defined(FLAS_CPU_X86)
extern const SmallGemmKernel small_gemm_avx2;
extern const SmallGemmKernel small_gemm_avx512;
#endif

}  // namespace flas::cpu_detail
