#pragma once
// Prefill-sized matmuls with bf16 weights, y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias), M above the decode
// kernels' range: compute-bound, so the point is to keep both FMA pipes busy.
//
// Why not oneDNN here: oneDNN wants its own weight layout, so bf16 weights had to be widened to f32
// tile by tile (an extra pass over memory and a packing step per tile) and reached ~60% of the f32
// peak at M = 128. These kernels read the weights as the checkpoint stores them ([N, K] row-major)
// and instead transpose the activations, which are small: the vector lanes run over 16 rows of x
// and each weight pair (w[n][k], w[n][k+1]) is broadcast from its row. Nothing of the weight is
// packed, widened in memory or copied.
//
//  - exact: x stays f32; the broadcast pair is widened in registers (shift / mask, exact) and
//    multiplied with f32 FMAs, so every product is the f32 product of the exact operands.
//  - bf16 (CpuBackend::Precision::bf16_activations): x rounded to bf16 (nearest even) and
//    multiplied with avx512_bf16's dot-product instruction, two products per lane per instruction.
//
// C-like on purpose, like small_gemm.hpp: the kernel unit is compiled for AVX-512 and must not
// export inline functions a non-AVX-512 caller could pick up.
#include <cstdint>

namespace flas::cpu_detail {

struct PrefillGemm {
  const void* xp = nullptr;     // x in the kernel's packed layout (PrefillGemmKernel::pack)
  std::int64_t M = 0, K = 0;
  const std::uint16_t* w = nullptr;  // bf16 bits, [N, K] row-major
  const float* bias = nullptr;  // [N] or nullptr
  float* y = nullptr;           // [M, ldy]
  std::int64_t ldy = 0;
};

struct PrefillGemmKernel {
  const char* name;
  // Bytes of the packed activations for x [M, K].
  std::int64_t (*packed_bytes)(std::int64_t M, std::int64_t K);
  // Packs rows [m0, m1) of x (callers split the rows over threads; every row must be packed once).
  void (*pack)(const float* x, std::int64_t M, std::int64_t K, std::int64_t m0, std::int64_t m1, void* out);
  // Output columns [n0, n1) of every row: threads take disjoint column ranges.
  void (*run)(const PrefillGemm& g, std::int64_t n0, std::int64_t n1);
  // Row granularity of pack: m0 must be a multiple of this.
  std::int64_t pack_rows;
  // Weight rows per tile: column ranges given to run are best a multiple of this.
  std::int64_t tile_cols;
};

#if defined(FLAS_CPU_X86)
extern const PrefillGemmKernel prefill_gemm_avx512_exact;
extern const PrefillGemmKernel prefill_gemm_avx512_bf16;
// Whether this CPU runs prefill_gemm_avx512_bf16 (avx512_bf16 on top of AVX-512 F/BW/VL).
bool cpu_has_avx512_bf16();
// Whether it has AMX-BF16 (oneDNN's AMX matmul then beats the avx512_bf16 kernel).
bool cpu_has_amx_bf16();
#endif

}  // namespace flas::cpu_detail
