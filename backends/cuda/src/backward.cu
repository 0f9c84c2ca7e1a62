// Backward kernels other than attention: RMSNorm's VJP (row statistics, then dx), the element-wise
// VJPs, and cross-entropy (optionally through the final soft-cap). Formulas and the order in which
// inputs are read before outputs are written follow scalar_backward.hpp, so the in-place forms the op
// set allows (dx = dy, dlogits = logits) are safe.
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

__global__ void rms_norm_row_stats_kernel(const float* x, WeightPtr w, const float* dy, float eps, float* r_out,
                                          float* c_out, std::int64_t D) {
  __shared__ float scratch[32];
  const std::int64_t base = std::int64_t(blockIdx.x) * D;
  float ss = 0.0f, c = 0.0f;
  for (std::int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float xd = x[base + d];
    ss += xd * xd;
    c += dy[base + d] * (1.0f + load_weight(w, d)) * xd;
  }
  ss = block_sum(ss, scratch);
  c = block_sum(c, scratch);
  if (threadIdx.x == 0) {
    r_out[blockIdx.x] = 1.0f / sqrtf(ss / float(D) + eps);
    c_out[blockIdx.x] = c;
  }
}

__global__ void rms_norm_dx_kernel(const float* x, WeightPtr w, const float* dy, const float* r, const float* c,
                                   float* dx, std::int64_t M, std::int64_t D) {
  FLAS_GRID_STRIDE(i, M * D) {
    const std::int64_t m = i / D, d = i % D;
    const float rm = r[m];
    dx[i] = rm * (1.0f + load_weight(w, d)) * dy[i] - rm * rm * rm / float(D) * x[i] * c[m];
  }
}

__global__ void gelu_tanh_mul_backward_kernel(const float* gate, const float* up, const float* dout, float* dgate,
                                              float* dup, std::int64_t n) {
  const float k = 0.7978845608028654f, c = 0.044715f;
  FLAS_GRID_STRIDE(i, n) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float t = tanhf(k * (g + c * g * g * g));
    const float gelu = 0.5f * g * (1.0f + t);
    const float dgelu = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * k * (1.0f + 3.0f * c * g * g);
    dgate[i] = d * u * dgelu;
    dup[i] = d * gelu;
  }
}

__global__ void softcap_backward_kernel(const float* y, float cap, const float* dy, float* dx, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) {
    const float t = y[i] / cap;
    dx[i] = dy[i] * (1.0f - t * t);
  }
}

__global__ void silu_backward_kernel(const float* x, const float* dy, float* dx, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) {
    const float xi = x[i], sig = 1.0f / (1.0f + expf(-xi));
    dx[i] = dy[i] * sig * (1.0f + xi * (1.0f - sig));
  }
}

__device__ __forceinline__ float capped(float z, float cap) { return cap > 0.0f ? cap * tanhf(z / cap) : z; }

// One block per row. Every read of the row (max, sum, the label's logit) happens before the barrier
// that precedes the first write, so dlogits may be logits.
__global__ void cross_entropy_kernel(const float* logits, const std::int64_t* labels, float cap, float inv_count,
                                     float* dlogits, float* row_loss, std::int64_t V) {
  __shared__ float scratch[32];
  const std::int64_t m = blockIdx.x;
  const float* row = logits + m * V;
  float* drow = dlogits ? dlogits + m * V : nullptr;
  const std::int64_t label = labels[m];
  if (label == -100) {
    if (drow)
      for (std::int64_t c = threadIdx.x; c < V; c += blockDim.x) drow[c] = 0.0f;
    if (threadIdx.x == 0) row_loss[m] = 0.0f;
    return;
  }
  const float z_label = capped(row[label], cap);
  float local_max = -INFINITY;
  for (std::int64_t c = threadIdx.x; c < V; c += blockDim.x) local_max = fmaxf(local_max, capped(row[c], cap));
  const float mx = block_max(local_max, scratch);
  float local_sum = 0.0f;
  for (std::int64_t c = threadIdx.x; c < V; c += blockDim.x) local_sum += expf(capped(row[c], cap) - mx);
  const float z = block_sum(local_sum, scratch);  // ends with barriers: all reads of the row are done
  if (threadIdx.x == 0) row_loss[m] = mx + logf(z) - z_label;
  if (!drow) return;
  for (std::int64_t c = threadIdx.x; c < V; c += blockDim.x) {
    const float zc = capped(row[c], cap);
    float g = (expf(zc - mx) / z - (c == label ? 1.0f : 0.0f)) * inv_count;
    if (cap > 0.0f) {
      const float t = zc / cap;
      g *= 1.0f - t * t;
    }
    drow[c] = g;
  }
}

}  // namespace

void rms_norm_row_stats(const float* x, WeightPtr w, const float* dy, float eps, float* r, float* c, std::int64_t M,
                        std::int64_t D, cudaStream_t s) {
  if (M == 0 || D == 0) return;
  rms_norm_row_stats_kernel<<<unsigned(M), kBlock, 0, s>>>(x, w, dy, eps, r, c, D);
  FLAS_CUDA_LAUNCHED();
}

void rms_norm_dx(const float* x, WeightPtr w, const float* dy, const float* r, const float* c, float* dx,
                 std::int64_t M, std::int64_t D, cudaStream_t s) {
  if (M * D == 0) return;
  rms_norm_dx_kernel<<<grid_for(M * D), kBlock, 0, s>>>(x, w, dy, r, c, dx, M, D);
  FLAS_CUDA_LAUNCHED();
}

void gelu_tanh_mul_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                            std::int64_t n, cudaStream_t s) {
  if (n == 0) return;
  gelu_tanh_mul_backward_kernel<<<grid_for(n), kBlock, 0, s>>>(gate, up, dout, dgate, dup, n);
  FLAS_CUDA_LAUNCHED();
}

void softcap_backward(const float* y, float cap, const float* dy, float* dx, std::int64_t n, cudaStream_t s) {
  if (n == 0) return;
  softcap_backward_kernel<<<grid_for(n), kBlock, 0, s>>>(y, cap, dy, dx, n);
  FLAS_CUDA_LAUNCHED();
}

void silu_backward(const float* x, const float* dy, float* dx, std::int64_t n, cudaStream_t s) {
  if (n == 0) return;
  silu_backward_kernel<<<grid_for(n), kBlock, 0, s>>>(x, dy, dx, n);
  FLAS_CUDA_LAUNCHED();
}

void cross_entropy(const float* logits, const std::int64_t* labels, float cap, float inv_count, float* dlogits,
                   float* row_loss, std::int64_t M, std::int64_t V, cudaStream_t s) {
  if (M == 0) return;
  cross_entropy_kernel<<<unsigned(M), kBlock, 0, s>>>(logits, labels, cap, inv_count, dlogits, row_loss, V);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
