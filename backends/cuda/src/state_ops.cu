// ODE state arithmetic on the device (cuda_state_ops.hpp): the fused per-row scaled sum and the
// reductions, for F32 and F64 elements. The _rn intrinsics round every product, quotient and sum on
// its own (nvcc never fuses them into an FMA), matching the host algebras built without contraction.
#include "device_util.cuh"

namespace flas::cuda_kernels {
namespace {

template <class E>
struct Rn;
template <>
struct Rn<float> {
  __device__ static float add(float a, float b) { return __fadd_rn(a, b); }
  __device__ static float sub(float a, float b) { return __fsub_rn(a, b); }
  __device__ static float mul(float a, float b) { return __fmul_rn(a, b); }
  __device__ static float div(float a, float b) { return __fdiv_rn(a, b); }
};
template <>
struct Rn<double> {
  __device__ static double add(double a, double b) { return __dadd_rn(a, b); }
  __device__ static double sub(double a, double b) { return __dsub_rn(a, b); }
  __device__ static double mul(double a, double b) { return __dmul_rn(a, b); }
  __device__ static double div(double a, double b) { return __ddiv_rn(a, b); }
};

struct ScaledSumArgs {
  void* y;
  const void* x;
  const void* k[kScaledSumMaxTerms];
  const double* coeff;
  int m;
  bool uniform;
  std::int64_t rows, per_row;
};

template <class E>
__global__ void row_scaled_sum_kernel(ScaledSumArgs a) {
  using R = Rn<E>;
  FLAS_GRID_STRIDE(i, a.rows * a.per_row) {
    const double* c = a.coeff + (a.uniform ? 0 : (i / a.per_row) * a.m);
    E acc;
    int j = 0;
    if (a.x) {
      acc = static_cast<const E*>(a.x)[i];
    } else {
      acc = R::mul(static_cast<E>(c[0]), static_cast<const E*>(a.k[0])[i]);
      j = 1;
    }
    for (; j < a.m; ++j) acc = R::add(acc, R::mul(static_cast<E>(c[j]), static_cast<const E*>(a.k[j])[i]));
    static_cast<E*>(a.y)[i] = acc;  // every input of element i was read above: y may alias any of them
  }
}

constexpr int kReduceThreads = 256, kReduceMaxBlocks = 1024;

template <class E>
__device__ double reduction_term(StateReduction kind, const E* a, const E* b, const E* c, double atol, double rtol,
                                 std::int64_t i) {
  using R = Rn<E>;
  switch (kind) {
    case StateReduction::dot: return double(a[i]) * double(b[i]);
    case StateReduction::sum_sq: return double(a[i]) * double(a[i]);
    case StateReduction::max_abs: return fabs(double(a[i]));
    case StateReduction::error_norm: {  // a = err, b = y0, c = y1
      const E scale = fmax(fabs(b[i]), fabs(c[i]));
      const E tol = R::add(static_cast<E>(atol), R::mul(static_cast<E>(rtol), scale));
      const E r = R::div(a[i], tol);
      return double(r) * double(r);
    }
    case StateReduction::scaled_norm:  // a = x, b = x_minus, c = y0
    case StateReduction::scaled_norm_no_minus: {
      const E diff = kind == StateReduction::scaled_norm ? R::sub(a[i], b[i]) : a[i];
      const E r = R::div(diff, R::add(static_cast<E>(atol), R::mul(static_cast<E>(fabs(c[i])), static_cast<E>(rtol))));
      return double(r) * double(r);
    }
  }
  return 0.0;
}

__device__ double warp_combine(double v, bool take_max) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const double o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = take_max ? fmax(v, o) : v + o;
  }
  return v;
}

template <class E>
__global__ void state_reduce_kernel(StateReduction kind, const void* a, const void* b, const void* c, double atol,
                                    double rtol, std::int64_t n, double* partial) {
  __shared__ double warps[kReduceThreads / 32];
  const bool take_max = kind == StateReduction::max_abs;
  double acc = 0.0;
  FLAS_GRID_STRIDE(i, n) {
    const double t = reduction_term<E>(kind, static_cast<const E*>(a), static_cast<const E*>(b),
                                       static_cast<const E*>(c), atol, rtol, i);
    acc = take_max ? fmax(acc, t) : acc + t;
  }
  acc = warp_combine(acc, take_max);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kReduceThreads / 32; ++w) total = take_max ? fmax(total, warps[w]) : total + warps[w];
    partial[blockIdx.x] = total;
  }
}

}  // namespace

void row_scaled_sum(void* y, const void* x, const void* const* k, int m, const double* coeff, bool uniform,
                    std::int64_t rows, std::int64_t per_row, bool f64, cudaStream_t s) {
  if (rows * per_row == 0 || m == 0) return;
  FLAS_CHECK(m <= kScaledSumMaxTerms, "row_scaled_sum: ", m, " terms in one call (at most ", kScaledSumMaxTerms, ")");
  ScaledSumArgs a{y, x, {}, coeff, m, uniform, rows, per_row};
  for (int j = 0; j < m; ++j) a.k[j] = k[j];
  const std::int64_t n = rows * per_row;
  if (f64)
    row_scaled_sum_kernel<double><<<grid_for(n), kBlock, 0, s>>>(a);
  else
    row_scaled_sum_kernel<float><<<grid_for(n), kBlock, 0, s>>>(a);
  FLAS_CUDA_LAUNCHED();
}

int state_reduce_blocks(std::int64_t n) {
  const std::int64_t blocks = (n + kReduceThreads - 1) / kReduceThreads;
  return int(blocks < 1 ? 1 : blocks > kReduceMaxBlocks ? kReduceMaxBlocks : blocks);
}

void state_reduce(StateReduction kind, const void* a, const void* b, const void* c, double atol, double rtol,
                  std::int64_t n, bool f64, double* partial, cudaStream_t s) {
  const unsigned blocks = unsigned(state_reduce_blocks(n));
  if (f64)
    state_reduce_kernel<double><<<blocks, kReduceThreads, 0, s>>>(kind, a, b, c, atol, rtol, n, partial);
  else
    state_reduce_kernel<float><<<blocks, kReduceThreads, 0, s>>>(kind, a, b, c, atol, rtol, n, partial);
  FLAS_CUDA_LAUNCHED();
}

}  // namespace flas::cuda_kernels
