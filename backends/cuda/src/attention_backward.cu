// Attention backward in two deterministic passes (FlashAttention-2's split, in plain f32):
//
//  1. per query row (block per head, query, batch row): recompute the scores, softmax statistics
//     (max, sum z) and D = Σ_j p_j (dout·v_j); write dq = Σ_j ds_j k_j · scale with
//     ds_j = p_j (dout·v_j − D) · slope_j, and keep (max, z, D) per row;
//  2. per key (warp per key j of one kv head): walk every query row of the kv head's group,
//     recompute p_j and ds_j from the row statistics, accumulate dv_j += p_j dout and
//     dk_j += ds_j q · scale in registers, and add them to dk, dv once — no atomics.
// Masking and soft-cap derivatives come from masked_score (attention_mask.cuh), as in the forward.
#include <mutex>

#include "attention_mask.cuh"
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

constexpr int kDimsPerLane = kAttentionMaxHeadDim / 32;
constexpr int kKeyWarps = 4;

__global__ void attention_backward_rows_kernel(AttentionArgs a, const float* dout, float* dq, float* stats) {
  extern __shared__ float smem[];
  float* q = smem;             // [hd]
  float* g = q + a.hd;         // [hd] dout row
  float* p = g + a.hd;         // [Sk] scores, then probabilities
  float* slope = p + a.Sk;     // [Sk]
  float* dP = slope + a.Sk;    // [Sk] dout·v_j, then ds_j
  float* scratch = dP + a.Sk;  // [32]
  const int h = blockIdx.x, i = blockIdx.y, b = blockIdx.z, kvh = h / a.group;
  const std::int64_t row = query_offset(a, b, i, h), qi = a.past + i;
  for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
    q[d] = a.q[row + d];
    g[d] = dout[row + d];
  }
  __syncthreads();
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    const float* krow = a.k + key_offset(a, b, j, kvh);
    const float* vrow = a.v + key_offset(a, b, j, kvh);
    float dot = 0.0f, dv = 0.0f;
    for (int d = 0; d < a.hd; ++d) {
      dot += q[d] * krow[d];
      dv += g[d] * vrow[d];
    }
    const MaskedScore ms = masked_score(a, dot, b, qi, j);
    p[j] = ms.score;
    slope[j] = ms.slope;
    dP[j] = dv;
    local_max = fmaxf(local_max, ms.score);
  }
  const float mx = block_max(local_max, scratch);
  float local_sum = 0.0f;
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    p[j] = expf(p[j] - mx);
    local_sum += p[j];
  }
  const float z = block_sum(local_sum, scratch);
  float local_D = 0.0f;
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) local_D += p[j] / z * dP[j];
  const float D = block_sum(local_D, scratch);
  for (int j = threadIdx.x; j < a.Sk; j += blockDim.x) {
    const float prob = p[j] / z;
    dP[j] = prob * (dP[j] - D) * slope[j] * a.scale;
  }
  __syncthreads();
  for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < a.Sk; ++j)
      if (dP[j] != 0.0f) acc += dP[j] * a.k[key_offset(a, b, j, kvh) + d];
    dq[row + d] = acc;
  }
  if (threadIdx.x == 0) {
    const std::int64_t r = (std::int64_t(b) * a.Sq + i) * a.nH + h;
    stats[3 * r] = mx;
    stats[3 * r + 1] = z;
    stats[3 * r + 2] = D;
  }
}

__global__ void __launch_bounds__(kKeyWarps * 32)
    attention_backward_keys_kernel(AttentionArgs a, const float* dout, float* dk, float* dv, const float* stats) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int j = blockIdx.x * kKeyWarps + warp, kvh = blockIdx.y, b = blockIdx.z;
  if (j >= a.Sk) return;  // whole warp
  float kr[kDimsPerLane], vr[kDimsPerLane], dk_acc[kDimsPerLane] = {}, dv_acc[kDimsPerLane] = {};
  const std::int64_t kv = key_offset(a, b, j, kvh);
#pragma unroll
  for (int e = 0; e < kDimsPerLane; ++e) {
    const int d = lane + 32 * e;
    kr[e] = d < a.hd ? a.k[kv + d] : 0.0f;
    vr[e] = d < a.hd ? a.v[kv + d] : 0.0f;
  }
  for (int i = 0; i < a.Sq; ++i)
    for (int gi = 0; gi < a.group; ++gi) {
      const int h = kvh * a.group + gi;
      const std::int64_t row = query_offset(a, b, i, h);
      const std::int64_t r = (std::int64_t(b) * a.Sq + i) * a.nH + h;
      float qv[kDimsPerLane], gv[kDimsPerLane], dot = 0.0f, dPj = 0.0f;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; ++e) {
        const int d = lane + 32 * e;
        qv[e] = d < a.hd ? a.q[row + d] : 0.0f;
        gv[e] = d < a.hd ? dout[row + d] : 0.0f;
        dot += qv[e] * kr[e];
        dPj += gv[e] * vr[e];
      }
      dot = warp_sum(dot);
      dPj = warp_sum(dPj);
      const MaskedScore ms = masked_score(a, dot, b, a.past + i, j);
      const float prob = expf(ms.score - stats[3 * r]) / stats[3 * r + 1];
      const float ds = prob * (dPj - stats[3 * r + 2]) * ms.slope * a.scale;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; ++e) {
        dv_acc[e] += prob * gv[e];
        dk_acc[e] += ds * qv[e];
      }
    }
#pragma unroll
  for (int e = 0; e < kDimsPerLane; ++e) {
    const int d = lane + 32 * e;
    if (d < a.hd) {
      dk[kv + d] += dk_acc[e];
      dv[kv + d] += dv_acc[e];
    }
  }
}

std::once_flag rows_smem_once;

}  // namespace

void attention_backward(const AttentionArgs& a, const float* dout, float* dq, float* dk, float* dv, float* stats,
                        cudaStream_t s) {
  if (a.B == 0 || a.nH == 0) return;
  FLAS_CHECK(a.hd <= kAttentionMaxHeadDim, "attention_backward: head size ", a.hd, " exceeds ",
             kAttentionMaxHeadDim);
  const std::size_t smem = (2 * std::size_t(a.hd) + 3 * std::size_t(a.Sk) + 32) * sizeof(float);
  FLAS_CHECK(smem <= cuda_detail::max_shared_memory_optin(), "attention_backward: ", a.Sk,
             " keys do not fit in shared memory");
  std::call_once(rows_smem_once, [] {
    FLAS_CUDA(cudaFuncSetAttribute(attention_backward_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   int(cuda_detail::max_shared_memory_optin())));
  });
  if (a.Sq > 0) {
    attention_backward_rows_kernel<<<dim3(unsigned(a.nH), unsigned(a.Sq), unsigned(a.B)), 128, smem, s>>>(a, dout, dq,
                                                                                                         stats);
    FLAS_CUDA_LAUNCHED();
  }
  const dim3 grid(unsigned((a.Sk + kKeyWarps - 1) / kKeyWarps), unsigned(a.nKV), unsigned(a.B));
  attention_backward_keys_kernel<<<grid, kKeyWarps * 32, 0, s>>>(a, dout, dk, dv, stats);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
