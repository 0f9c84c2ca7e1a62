// Attention forward, prefill-shaped: two of the three kernels over the same score function
// (attention_mask.cuh), all f32; the decode kernel is in attention_split_kv.cu.
//
//  rows      one block per (head, query, batch row); every score of the row in shared memory, then
//            max, exp, sum and the weighted sum of values. The plainest form of the reference.
//  tiled     flash-style: a block takes 16 queries of one head and walks the keys in tiles of 32,
//            with K and V tiles in shared memory and an online softmax (running max m, sum l, and
//            the output rescaled by exp(m_old − m_new)); warp w owns queries 4w..4w+3, lane j key j
//            of the tile for scores and head dims lane + 32e for the output.
//
// Keys that the rules mask still count where the reference counts them: a row whose keys are all
// masked gets uniform weights (hf_min: every score is finfo.min) or the softmax of the shifted scores
// (−1e4 rules), so no kernel skips masked keys. Keys beyond kv_len are never read.
#include <algorithm>
#include <mutex>

#include "attention_mask.cuh"
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

// Allows `kernel` the device's full opt-in shared memory (once per kernel).
template <class Kernel>
void allow_large_shared_memory(Kernel kernel, std::once_flag& once) {
  std::call_once(once, [&] {
    FLAS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   int(cuda_detail::max_shared_memory_optin())));
  });
}

// ---------------------------------------------------------------------------------------------- rows
__global__ void attention_rows_kernel(AttentionArgs a) {
  extern __shared__ float smem[];
  float* q = smem;           // [hd]
  float* p = q + a.hd;       // [Sk] scores, then unnormalised probabilities
  float* scratch = p + a.Sk; // [32]
  const int h = blockIdx.x, i = blockIdx.y, b = blockIdx.z;
  const int kvh = h / a.group;
  const std::int64_t qi = a.past + i;
  const float* qrow = a.q + query_offset(a, b, i, h);
  for (int d = threadIdx.x; d < a.hd; d += blockDim.x) q[d] = qrow[d];
  __syncthreads();
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    const float* krow = a.k + key_offset(a, b, j, kvh);
    float dot = 0.0f;
    for (int d = 0; d < a.hd; ++d) dot += q[d] * krow[d];
    p[j] = masked_score(a, dot, b, qi, j).score;
    local_max = fmaxf(local_max, p[j]);
  }
  const float mx = block_max(local_max, scratch);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    p[j] = expf(p[j] - mx);
    local_sum += p[j];
  }
  const float inv_z = 1.0f / block_sum(local_sum, scratch);  // its barriers also publish p
  float* orow = a.out + query_offset(a, b, i, h);
  for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < a.Sk; ++j) acc += p[j] * a.v[key_offset(a, b, j, kvh) + d];
    orow[d] = acc * inv_z;
  }
}

// --------------------------------------------------------------------------------------------- tiled
constexpr int kTileQ = 16, kTileK = 32, kTiledWarps = 4, kRowsPerWarp = kTileQ / kTiledWarps;
constexpr int kDimsPerLane = kAttentionMaxHeadDim / 32;

std::size_t tiled_smem_bytes(int hd) {
  const std::size_t stride = std::size_t(hd) + 1;  // +1: lanes reading K rows hit distinct banks
  return (std::size_t(kTileQ) * hd + 2 * kTileK * stride + kTileQ * kTileK) * sizeof(float);
}

__global__ void __launch_bounds__(kTiledWarps * 32) attention_tiled_kernel(AttentionArgs a) {
  extern __shared__ float smem[];
  const int stride = a.hd + 1;
  float* qs = smem;                       // [kTileQ][hd]
  float* ks = qs + kTileQ * a.hd;         // [kTileK][hd + 1]
  float* vs = ks + kTileK * stride;       // [kTileK][hd + 1]
  float* ps = vs + kTileK * stride;       // [kTileQ][kTileK]
  const int q0 = blockIdx.x * kTileQ, h = blockIdx.y, b = blockIdx.z, kvh = h / a.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int idx = threadIdx.x; idx < kTileQ * a.hd; idx += blockDim.x) {
    const int r = idx / a.hd, d = idx % a.hd, i = q0 + r;
    qs[idx] = i < a.Sq ? a.q[query_offset(a, b, i, h) + d] : 0.0f;
  }
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
#pragma unroll
  for (int t = 0; t < kRowsPerWarp; ++t) {
    m[t] = -INFINITY;
    l[t] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) acc[t][e] = 0.0f;
  }

  for (int k0 = 0; k0 < a.Sk; k0 += kTileK) {
    __syncthreads();  // the previous tile's readers are done
    for (int idx = threadIdx.x; idx < kTileK * a.hd; idx += blockDim.x) {
      const int j = idx / a.hd, d = idx % a.hd, key = k0 + j;
      const bool in = key < a.Sk;
      ks[j * stride + d] = in ? a.k[key_offset(a, b, key, kvh) + d] : 0.0f;
      vs[j * stride + d] = in ? a.v[key_offset(a, b, key, kvh) + d] : 0.0f;
    }
    __syncthreads();
    const int key = k0 + lane;
    const bool in = key < a.Sk;
#pragma unroll
    for (int t = 0; t < kRowsPerWarp; ++t) {
      const int r = warp * kRowsPerWarp + t;
      float s = -INFINITY;  // keys past Sk: excluded outright (p = 0), unlike masked keys
      if (in) {
        float dot = 0.0f;
        for (int d = 0; d < a.hd; ++d) dot += qs[r * a.hd + d] * ks[lane * stride + d];
        s = masked_score(a, dot, b, a.past + q0 + r, key).score;
      }
      const float m_new = fmaxf(m[t], warp_max(s));  // finite: lane 0's key is always in range
      const float p = in ? expf(s - m_new) : 0.0f;
      const float alpha = expf(m[t] - m_new);        // 0 on the first tile (m = −inf)
      l[t] = l[t] * alpha + warp_sum(p);
      m[t] = m_new;
      ps[r * kTileK + lane] = p;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; ++e) acc[t][e] *= alpha;
    }
    __syncwarp();  // a warp reads only its own rows of ps
#pragma unroll
    for (int t = 0; t < kRowsPerWarp; ++t) {
      const int r = warp * kRowsPerWarp + t;
      for (int j = 0; j < kTileK; ++j) {
        const float pj = ps[r * kTileK + j];
#pragma unroll
        for (int e = 0; e < kDimsPerLane; ++e) {
          const int d = lane + 32 * e;
          if (d < a.hd) acc[t][e] += pj * vs[j * stride + d];
        }
      }
    }
  }

#pragma unroll
  for (int t = 0; t < kRowsPerWarp; ++t) {
    const int i = q0 + warp * kRowsPerWarp + t;
    if (i >= a.Sq) continue;
    float* orow = a.out + query_offset(a, b, i, h);
    const float inv_l = 1.0f / l[t];
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) {
      const int d = lane + 32 * e;
      if (d < a.hd) orow[d] = acc[t][e] * inv_l;
    }
  }
}

std::once_flag rows_smem_once, tiled_smem_once;

}  // namespace

void attention_rows(const AttentionArgs& a, cudaStream_t s) {
  if (a.B == 0 || a.Sq == 0 || a.nH == 0) return;
  const std::size_t smem = (std::size_t(a.hd) + std::size_t(a.Sk) + 32) * sizeof(float);
  FLAS_CHECK(smem <= cuda_detail::max_shared_memory_optin(), "attention (rows kernel): ", a.Sk,
             " keys do not fit in shared memory");
  allow_large_shared_memory(attention_rows_kernel, rows_smem_once);
  attention_rows_kernel<<<dim3(unsigned(a.nH), unsigned(a.Sq), unsigned(a.B)), 128, smem, s>>>(a);
  FLAS_CUDA_LAUNCHED();
}

void attention_tiled(const AttentionArgs& a, cudaStream_t s) {
  if (a.B == 0 || a.Sq == 0 || a.nH == 0) return;
  FLAS_CHECK(a.hd <= kAttentionMaxHeadDim, "attention (tiled kernel): head size ", a.hd, " exceeds ",
             kAttentionMaxHeadDim);
  allow_large_shared_memory(attention_tiled_kernel, tiled_smem_once);
  const dim3 grid(unsigned((a.Sq + kTileQ - 1) / kTileQ), unsigned(a.nH), unsigned(a.B));
  attention_tiled_kernel<<<grid, kTiledWarps * 32, tiled_smem_bytes(a.hd), s>>>(a);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
