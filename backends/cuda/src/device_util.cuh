#pragma once
// Device-side helpers shared by the .cu files: weight loads, warp and block reductions, launch sizes.
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "kernels.hpp"
#include "runtime.hpp"

namespace flas::cuda_kernels {

constexpr int kBlock = 256;  // threads of element-wise and row kernels

__device__ __forceinline__ float bf16_bits_to_float(std::uint16_t bits) {
  return __uint_as_float(std::uint32_t(bits) << 16);
}

__device__ __forceinline__ float load_weight(WeightPtr w, std::int64_t i) {
  return w.bf16 ? bf16_bits_to_float(static_cast<const std::uint16_t*>(w.p)[i]) : static_cast<const float*>(w.p)[i];
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum / max over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` holds 32 floats of shared memory; calls may follow each other directly.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // an earlier call's readers are done with scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(std::int64_t n, int threads = kBlock) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < (std::int64_t(1) << 20) ? blocks : (std::int64_t(1) << 20));
}

#define FLAS_GRID_STRIDE(i, n)                                                           \
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += std::int64_t(blockDim.x) * gridDim.x)

}  // namespace flas::cuda_kernels
