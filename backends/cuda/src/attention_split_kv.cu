// Attention forward for decode (split_kv): a block takes one kv head, all its query heads and all
// queries (≤ 8 rows) over one slice of the keys — K and V rows are read once for the whole GQA group;
// its warps walk the slice's keys with an online softmax each, merge in shared memory, and write
// (max, sum, unnormalised output) per slice; a second kernel merges the slices. Masked keys count as
// the reference counts them (see attention.cu); keys beyond kv_len are never read.
#include <algorithm>

#include "attention_mask.cuh"
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

constexpr int kDimsPerLane = kAttentionMaxHeadDim / 32;

// 32 keys per slice (8 per warp): even a short decode context spreads over several blocks per kv head.
constexpr int kSplitWarps = 4, kKeysPerSplit = 32, kMaxSplits = 128;

// Row r of a block = (query i = r / group, head in group g = r % group).
__global__ void __launch_bounds__(kSplitWarps * 32) attention_split_kv_kernel(AttentionArgs a, int splits,
                                                                              int keys_per_split, float* scratch) {
  __shared__ float qs[kSplitKvMaxRows][kAttentionMaxHeadDim];
  __shared__ float wm[kSplitWarps][kSplitKvMaxRows], wl[kSplitWarps][kSplitKvMaxRows];
  __shared__ float wacc[kSplitWarps][kSplitKvMaxRows][kAttentionMaxHeadDim];
  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rows = a.Sq * a.group;
  for (int idx = threadIdx.x; idx < rows * a.hd; idx += blockDim.x) {
    const int r = idx / a.hd, d = idx % a.hd;
    qs[r][d] = a.q[query_offset(a, b, r / a.group, kvh * a.group + r % a.group) + d];
  }
  __syncthreads();

  float m[kSplitKvMaxRows], l[kSplitKvMaxRows], acc[kSplitKvMaxRows][kDimsPerLane];
#pragma unroll
  for (int r = 0; r < kSplitKvMaxRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) acc[r][e] = 0.0f;
  }
  const int j_begin = split * keys_per_split, j_end = min(a.Sk, j_begin + keys_per_split);
  for (int j = j_begin + warp; j < j_end; j += kSplitWarps) {
    float kv[kDimsPerLane];
    const float* krow = a.k + key_offset(a, b, j, kvh);
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) kv[e] = lane + 32 * e < a.hd ? krow[lane + 32 * e] : 0.0f;
    float p[kSplitKvMaxRows], alpha[kSplitKvMaxRows];
#pragma unroll
    for (int r = 0; r < kSplitKvMaxRows; ++r) {
      if (r >= rows) break;
      float partial = 0.0f;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; ++e)
        if (lane + 32 * e < a.hd) partial += qs[r][lane + 32 * e] * kv[e];
      const float s = masked_score(a, warp_sum(partial), b, a.past + r / a.group, j).score;
      const float m_new = fmaxf(m[r], s);
      alpha[r] = expf(m[r] - m_new);
      p[r] = expf(s - m_new);
      l[r] = l[r] * alpha[r] + p[r];
      m[r] = m_new;
    }
    const float* vrow = a.v + key_offset(a, b, j, kvh);
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e) kv[e] = lane + 32 * e < a.hd ? vrow[lane + 32 * e] : 0.0f;
#pragma unroll
    for (int r = 0; r < kSplitKvMaxRows; ++r) {
      if (r >= rows) break;
#pragma unroll
      for (int e = 0; e < kDimsPerLane; ++e) acc[r][e] = acc[r][e] * alpha[r] + p[r] * kv[e];
    }
  }

  // Merge the warps (a warp that saw no key has m = −inf, l = 0 and weighs 0).
#pragma unroll
  for (int r = 0; r < kSplitKvMaxRows; ++r) {
    if (r >= rows) break;
    if (lane == 0) {
      wm[warp][r] = m[r];
      wl[warp][r] = l[r];
    }
#pragma unroll
    for (int e = 0; e < kDimsPerLane; ++e)
      if (lane + 32 * e < a.hd) wacc[warp][r][lane + 32 * e] = acc[r][e];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < rows * a.hd; idx += blockDim.x) {
    const int r = idx / a.hd, d = idx % a.hd;
    float mx = -INFINITY;
    for (int w = 0; w < kSplitWarps; ++w) mx = fmaxf(mx, wm[w][r]);
    float lsum = 0.0f, out = 0.0f;
    for (int w = 0; w < kSplitWarps; ++w) {
      const float f = wm[w][r] == -INFINITY ? 0.0f : expf(wm[w][r] - mx);
      lsum += wl[w][r] * f;
      out += wacc[w][r][d] * f;
    }
    const int i = r / a.group, h = kvh * a.group + r % a.group;
    const std::int64_t slot = ((std::int64_t(b) * a.Sq + i) * a.nH + h) * splits + split;
    scratch[slot * (a.hd + 2) + 2 + d] = out;
    if (d == 0) {
      scratch[slot * (a.hd + 2)] = mx;
      scratch[slot * (a.hd + 2) + 1] = lsum;
    }
  }
}

// One block per (b, i, h): merges the slices' (m, l, output) into the normalised output row.
__global__ void attention_merge_splits_kernel(AttentionArgs a, int splits, const float* scratch) {
  const std::int64_t row = blockIdx.x;  // (b·Sq + i)·nH + h
  const float* base = scratch + row * splits * (a.hd + 2);
  float mx = -INFINITY;
  for (int s = 0; s < splits; ++s) mx = fmaxf(mx, base[s * (a.hd + 2)]);
  float lsum = 0.0f;
  for (int s = 0; s < splits; ++s) lsum += base[s * (a.hd + 2) + 1] * expf(base[s * (a.hd + 2)] - mx);
  float* orow = a.out + row * a.hd;
  for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) acc += base[s * (a.hd + 2) + 2 + d] * expf(base[s * (a.hd + 2)] - mx);
    orow[d] = acc / lsum;
  }
}

}  // namespace

int split_kv_splits(const AttentionArgs& a) {
  const int wanted = (a.Sk + kKeysPerSplit - 1) / kKeysPerSplit;
  return std::max(1, std::min(wanted, kMaxSplits));
}

void attention_split_kv(const AttentionArgs& a, int splits, float* scratch, cudaStream_t s) {
  if (a.B == 0 || a.Sq == 0 || a.nH == 0) return;
  FLAS_CHECK(a.hd <= kAttentionMaxHeadDim && a.Sq * a.group <= kSplitKvMaxRows && a.Sk >= 1,
             "attention (split_kv kernel): head size ", a.hd, ", ", a.Sq, " queries × group ", a.group,
             " or ", a.Sk, " keys not supported");
  // Every slice non-empty: keys_per_split · (splits − 1) < Sk.
  const int keys_per_split = (a.Sk + splits - 1) / splits;
  const int used = (a.Sk + keys_per_split - 1) / keys_per_split;
  attention_split_kv_kernel<<<dim3(unsigned(used), unsigned(a.nKV), unsigned(a.B)), kSplitWarps * 32, 0, s>>>(
      a, used, keys_per_split, scratch);
  FLAS_CUDA_LAUNCHED();
  attention_merge_splits_kernel<<<unsigned(std::int64_t(a.B) * a.Sq * a.nH), 128, 0, s>>>(a, used, scratch);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
