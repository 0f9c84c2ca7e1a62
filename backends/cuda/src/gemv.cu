// Decode-sized linear: y[M,N] = x[M,K]·w[N,K]ᵀ (+ b) for M <= 8 — a bandwidth-bound streaming kernel.
//
// One warp per output column n: its 32 lanes stream the weight row w[n, :] once with 16-byte loads
// (8 bf16 or 4 f32 values per lane and step), multiply by every one of the M activation rows (read
// through L1/L2, they are small) and keep M f32 accumulators each; a warp reduction finishes the sum.
// Exact: f32 activations times the weight widened to f32, f32 accumulation — no rounding to bf16, so
// decode matches the f32 reference whatever CudaBackend::precision() says.
// Unaligned pointers or K not a multiple of the vector width take the scalar loop (same maths).
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

constexpr int kWarpsPerBlock = 4;

struct Bf16x8 {
  static constexpr int width = 8;
  __device__ static void load(const void* row, int k, float* out) {
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const std::uint16_t*>(row) + k);
    const std::uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = __uint_as_float(words[i] << 16);              // the low half is the earlier element
      out[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
    }
  }
};

struct F32x4 {
  static constexpr int width = 4;
  __device__ static void load(const void* row, int k, float* out) {
    const float4 v = *reinterpret_cast<const float4*>(static_cast<const float*>(row) + k);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  }
};

template <class Vec>
__global__ void small_m_linear_vector_kernel(const float* __restrict__ x, WeightPtr w, WeightPtr bias,
                                             float* __restrict__ y, int M, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;  // the whole warp leaves together; no block-wide synchronisation below
  const std::size_t elem = w.bf16 ? 2 : 4;
  const void* wrow = static_cast<const char*>(w.p) + std::size_t(n) * std::size_t(K) * elem;
  float acc[kSmallLinearMaxRows] = {};
#pragma unroll 4  // several 16-byte weight loads in flight per lane
  for (int k = lane * Vec::width; k < K; k += 32 * Vec::width) {
    float wv[Vec::width];
    Vec::load(wrow, k, wv);
#pragma unroll
    for (int m = 0; m < kSmallLinearMaxRows; ++m) {
      if (m >= M) break;
      const float* xr = x + std::size_t(m) * std::size_t(K) + k;
#pragma unroll
      for (int e = 0; e < Vec::width; e += 4) {
        const float4 xv = *reinterpret_cast<const float4*>(xr + e);
        acc[m] += wv[e] * xv.x + wv[e + 1] * xv.y + wv[e + 2] * xv.z + wv[e + 3] * xv.w;
      }
    }
  }
#pragma unroll
  for (int m = 0; m < kSmallLinearMaxRows; ++m) {
    if (m >= M) break;
    const float sum = warp_sum(acc[m]);
    if (lane == 0) y[std::size_t(m) * std::size_t(N) + n] = bias.p ? sum + load_weight(bias, n) : sum;
  }
}

__global__ void small_m_linear_scalar_kernel(const float* __restrict__ x, WeightPtr w, WeightPtr bias,
                                             float* __restrict__ y, int M, int N, int K) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  if (n >= N) return;
  float acc[kSmallLinearMaxRows] = {};
  for (int k = lane; k < K; k += 32) {
    const float wv = load_weight(w, std::int64_t(n) * K + k);
#pragma unroll
    for (int m = 0; m < kSmallLinearMaxRows; ++m) {
      if (m >= M) break;
      acc[m] += wv * x[std::size_t(m) * std::size_t(K) + k];
    }
  }
#pragma unroll
  for (int m = 0; m < kSmallLinearMaxRows; ++m) {
    if (m >= M) break;
    const float sum = warp_sum(acc[m]);
    if (lane == 0) y[std::size_t(m) * std::size_t(N) + n] = bias.p ? sum + load_weight(bias, n) : sum;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

}  // namespace

void small_m_linear(const float* x, WeightPtr w, WeightPtr bias, float* y, int M, int N, int K, cudaStream_t s) {
  if (M == 0 || N == 0) return;
  const unsigned blocks = unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const int threads = 32 * kWarpsPerBlock;
  const int width = w.bf16 ? Bf16x8::width : F32x4::width;
  const bool vector = K % width == 0 && aligned16(x) && aligned16(w.p);
  if (vector && w.bf16)
    small_m_linear_vector_kernel<Bf16x8><<<blocks, threads, 0, s>>>(x, w, bias, y, M, N, K);
  else if (vector)
    small_m_linear_vector_kernel<F32x4><<<blocks, threads, 0, s>>>(x, w, bias, y, M, N, K);
  else
    small_m_linear_scalar_kernel<<<blocks, threads, 0, s>>>(x, w, bias, y, M, N, K);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
