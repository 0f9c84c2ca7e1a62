// Row-wise and element-wise forward kernels, casts and column sums. Each computes exactly what
// ScalarBackend<float> computes, in the same order of operations, so only the f32 library functions
// (tanhf, expf, sincosf: 1–2 ulp) and reduction orders differ from the reference. The residual updates
// (y += a·x, y += g ⊙ x) round the product and the sum separately, as PyTorch's h + dt·v does and as
// the project builds its host code (-ffp-contract=off): __fmul_rn/__fadd_rn are never fused into an FMA.
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

__global__ void embedding_kernel(const std::int64_t* ids, WeightPtr table, float scale, float* out, std::int64_t n,
                                 std::int64_t H) {
  FLAS_GRID_STRIDE(i, n * H) {
    const std::int64_t row = i / H, col = i % H;
    out[i] = load_weight(table, ids[row] * H + col) * scale;
  }
}

// One block per row: y = x · (mean x² + eps)^−½ · (1 + w). Reads the whole row before writing, so
// y may be x.
__global__ void rms_norm_kernel(const float* x, WeightPtr w, float eps, float* y, std::int64_t D) {
  __shared__ float scratch[32];
  const float* xr = x + std::int64_t(blockIdx.x) * D;
  float* yr = y + std::int64_t(blockIdx.x) * D;
  float ss = 0.0f;
  for (std::int64_t d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / float(D) + eps);
  for (std::int64_t d = threadIdx.x; d < D; d += blockDim.x) yr[d] = xr[d] * inv * (1.0f + load_weight(w, d));
}

__global__ void rms_norm_residual_kernel(float* h, const float* x, WeightPtr w, WeightPtr gate, float eps,
                                         std::int64_t D) {
  __shared__ float scratch[32];
  const float* xr = x + std::int64_t(blockIdx.x) * D;
  float* hr = h + std::int64_t(blockIdx.x) * D;
  float ss = 0.0f;
  for (std::int64_t d = threadIdx.x; d < D; d += blockDim.x) ss += xr[d] * xr[d];
  ss = block_sum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / float(D) + eps);
  for (std::int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    const float normed = xr[d] * inv * (1.0f + load_weight(w, d));
    hr[d] = __fadd_rn(hr[d], gate.p ? __fmul_rn(load_weight(gate, d), normed) : normed);
  }
}

__global__ void add_kernel(float* y, const float* x, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) y[i] += x[i];
}
__global__ void add_gated_kernel(float* y, WeightPtr g, const float* x, std::int64_t n, std::int64_t D) {
  FLAS_GRID_STRIDE(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(load_weight(g, i % D), x[i]));
}
__global__ void gate_product_kernel(float* out, WeightPtr g, const float* x, std::int64_t n, std::int64_t D) {
  FLAS_GRID_STRIDE(i, n) out[i] = load_weight(g, i % D) * x[i];
}
__global__ void axpy_kernel(float* y, float a, const float* x, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
}
__global__ void scale_kernel(float* x, float a, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) x[i] *= a;
}
__global__ void fill_kernel(float* x, float value, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) x[i] = value;
}
__global__ void softcap_kernel(float* x, float cap, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) x[i] = cap * tanhf(x[i] / cap);
}
__global__ void gelu_tanh_mul_kernel(const float* gate, const float* up, float* out, std::int64_t n) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  FLAS_GRID_STRIDE(i, n) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g))) * up[i];
  }
}
__global__ void silu_kernel(float* x, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) x[i] = x[i] / (1.0f + expf(-x[i]));
}

// One thread per (row, head, pair i): angle = f32(pos) · inv_freq_i, as HF computes it.
__global__ void rope_kernel(float* x, const std::int64_t* pos, const float* inv_freq, std::int64_t rows,
                            std::int64_t nh, std::int64_t hd, float sin_sign) {
  const std::int64_t half = hd / 2;
  FLAS_GRID_STRIDE(t, rows * nh * half) {
    const std::int64_t i = t % half, head = (t / half) % nh, row = t / (half * nh);
    const float angle = float(pos[row]) * inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    s *= sin_sign;
    float* p = x + (row * nh + head) * hd;
    const float a = p[i], b = p[i + half];
    p[i] = a * c - b * s;
    p[i + half] = b * c + a * s;
  }
}

__global__ void round_to_bf16_kernel(const float* x, std::uint16_t* out, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) {  // round to nearest even, NaN stays NaN (as flas::f32_to_bf16)
    std::uint32_t u = __float_as_uint(x[i]);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      out[i] = std::uint16_t((u >> 16) | 0x40u);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      out[i] = std::uint16_t(u >> 16);
    }
  }
}
__global__ void widen_bf16_kernel(const std::uint16_t* x, float* out, std::int64_t n) {
  FLAS_GRID_STRIDE(i, n) out[i] = bf16_bits_to_float(x[i]);
}
__global__ void add_bias_kernel(float* y, WeightPtr bias, std::int64_t M, std::int64_t N) {
  FLAS_GRID_STRIDE(i, M * N) y[i] += load_weight(bias, i % N);
}

// Block of 32 columns × 8 row lanes; row lane r sums rows r, r + 8, ...; the 8 partial sums of a
// column are then added in a fixed order by one thread.
__global__ void column_dot_kernel(const float* a, const float* b, const float* row_scale, std::int64_t M,
                                  std::int64_t D, float* out) {
  __shared__ float partial[8][33];
  const std::int64_t col = std::int64_t(blockIdx.x) * 32 + threadIdx.x;
  float acc = 0.0f;
  if (col < D)
    for (std::int64_t m = threadIdx.y; m < M; m += 8) {
      float v = a[m * D + col];
      if (b) v *= b[m * D + col];
      if (row_scale) v *= row_scale[m];
      acc += v;
    }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < D) {
    float sum = 0.0f;
    for (int r = 0; r < 8; ++r) sum += partial[r][threadIdx.x];
    out[col] += sum;
  }
}

}  // namespace

void embedding(const std::int64_t* ids, WeightPtr table, float scale, float* out, std::int64_t n, std::int64_t H,
               cudaStream_t s) {
  if (n * H == 0) return;
  embedding_kernel<<<grid_for(n * H), kBlock, 0, s>>>(ids, table, scale, out, n, H);
  FLAS_CUDA_LAUNCHED();
}

void rms_norm(const float* x, WeightPtr w, float eps, float* y, std::int64_t M, std::int64_t D, cudaStream_t s) {
  if (M * D == 0) return;
  rms_norm_kernel<<<unsigned(M), kBlock, 0, s>>>(x, w, eps, y, D);
  FLAS_CUDA_LAUNCHED();
}

void rms_norm_residual(float* h, const float* x, WeightPtr w, WeightPtr gate, float eps, std::int64_t M,
                       std::int64_t D, cudaStream_t s) {
  if (M * D == 0) return;
  rms_norm_residual_kernel<<<unsigned(M), kBlock, 0, s>>>(h, x, w, gate, eps, D);
  FLAS_CUDA_LAUNCHED();
}

#define FLAS_ELEMENTWISE_LAUNCH(kernel, n, ...)                   \
  do {                                                            \
    if ((n) == 0) return;                                         \
    kernel<<<grid_for(n), kBlock, 0, s>>>(__VA_ARGS__);           \
    FLAS_CUDA_LAUNCHED();                                         \
  } while (0)

void add(float* y, const float* x, std::int64_t n, cudaStream_t s) { FLAS_ELEMENTWISE_LAUNCH(add_kernel, n, y, x, n); }
void add_gated(float* y, WeightPtr g, const float* x, std::int64_t n, std::int64_t D, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(add_gated_kernel, n, y, g, x, n, D);
}
void gate_product(float* out, WeightPtr g, const float* x, std::int64_t n, std::int64_t D, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(gate_product_kernel, n, out, g, x, n, D);
}
void axpy(float* y, float a, const float* x, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(axpy_kernel, n, y, a, x, n);
}
void scale(float* x, float a, std::int64_t n, cudaStream_t s) { FLAS_ELEMENTWISE_LAUNCH(scale_kernel, n, x, a, n); }
void fill(float* x, float value, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(fill_kernel, n, x, value, n);
}
void softcap(float* x, float cap, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(softcap_kernel, n, x, cap, n);
}
void gelu_tanh_mul(const float* gate, const float* up, float* out, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(gelu_tanh_mul_kernel, n, gate, up, out, n);
}
void silu(float* x, std::int64_t n, cudaStream_t s) { FLAS_ELEMENTWISE_LAUNCH(silu_kernel, n, x, n); }
void rope(float* x, const std::int64_t* positions, const float* inv_freq, std::int64_t rows, std::int64_t nh,
          std::int64_t hd, float sin_sign, cudaStream_t s) {
  const std::int64_t n = rows * nh * (hd / 2);
  FLAS_ELEMENTWISE_LAUNCH(rope_kernel, n, x, positions, inv_freq, rows, nh, hd, sin_sign);
}
void round_to_bf16(const float* x, std::uint16_t* out, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(round_to_bf16_kernel, n, x, out, n);
}
void widen_bf16(const std::uint16_t* x, float* out, std::int64_t n, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(widen_bf16_kernel, n, x, out, n);
}
void add_bias(float* y, WeightPtr bias, std::int64_t M, std::int64_t N, cudaStream_t s) {
  FLAS_ELEMENTWISE_LAUNCH(add_bias_kernel, M * N, y, bias, M, N);
}

void column_dot_accumulate(const float* a, const float* b, const float* row_scale, std::int64_t M, std::int64_t D,
                           float* out, cudaStream_t s) {
  if (M == 0 || D == 0) return;
  column_dot_kernel<<<unsigned((D + 31) / 32), dim3(32, 8), 0, s>>>(a, b, row_scale, M, D, out);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
