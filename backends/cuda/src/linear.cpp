// linear() and linear_backward(): y[M, N] = x[M, K] · w[N, K]ᵀ (+ b) and its VJP.
//
// Paths:
//  - M <= small_m_max (decode): the streaming kernel (gemv.cu), exact for F32 and BF16 weights;
//  - F32 weights: cuBLAS f32 GEMM (CUBLAS_COMPUTE_32F, no TF32);
//  - BF16 weights, Precision::exact: the weight widened to f32 in a scratch buffer, then the f32 GEMM;
//  - BF16 weights, Precision::bf16_inputs: x rounded to bf16, cuBLAS bf16 × bf16 -> f32 (tensor cores).
// Row-major tensors are column-major transposes, so y = x·wᵀ is cuBLAS's yᵀ = w·xᵀ with w read
// transposed (op T on a K × N column-major matrix). An output that overlaps an input is computed into
// a scratch buffer first.
#include "caching_allocator.hpp"
#include "flas/backends/cuda_backward.hpp"
#include "flas/core/linear_backward_checks.hpp"
#include "op_support.hpp"
#include "runtime.hpp"

namespace flas {
namespace {

using namespace cuda_detail;
namespace k = cuda_kernels;

// C (m × n, column-major, ldc) = op(A) · op(B) + beta · C, f32 accumulation and output.
void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int kk, const void* A, cudaDataType at, int lda,
          const void* B, cudaDataType bt, int ldb, float beta, float* C, int ldc, cudaStream_t s) {
  const float alpha = 1.0f;
  FLAS_CUBLAS(cublasGemmEx(cublas_on(s), ta, tb, m, n, kk, &alpha, A, at, lda, B, bt, ldb, &beta, C, CUDA_R_32F, ldc,
                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// The weight operand in the element type a GEMM needs, and x (or dy) to match it: f32 × f32, or
// bf16 × bf16 when `bf16_inputs` (then `act` is rounded into a scratch buffer).
struct GemmOperands {
  const void* w = nullptr;
  const void* act = nullptr;
  cudaDataType type = CUDA_R_32F;
  Scratch<float> widened;
  Scratch<std::uint16_t> rounded;
};

GemmOperands gemm_operands(const DeviceOperand& w, const float* act, std::int64_t act_numel, bool bf16_inputs,
                           cudaStream_t s) {
  GemmOperands g;
  if (!w.bf16()) {
    g.w = w.ptr;
    g.act = act;
  } else if (bf16_inputs) {
    g.rounded = scratch<std::uint16_t>(act_numel, s);
    k::round_to_bf16(act, g.rounded.ptr, act_numel, s);
    g.w = w.ptr;
    g.act = g.rounded.ptr;
    g.type = CUDA_R_16BF;
  } else {
    g.widened = scratch<float>(w.numel(), s);
    k::widen_bf16(static_cast<const std::uint16_t*>(w.ptr), g.widened.ptr, w.numel(), s);
    g.w = g.widened.ptr;
    g.act = act;
  }
  return g;
}

bool use_bf16_inputs(const DeviceOperand& w, std::int64_t M) {
  return w.bf16() && M > CudaBackend::small_m_max && CudaBackend::precision() == CudaBackend::Precision::bf16_inputs;
}

// Runs `compute(out)` into `dst`, or into a scratch buffer copied to `dst` when `dst` overlaps an input.
template <class Compute>
void into(CudaTensor& dst, bool overlapping, cudaStream_t s, Compute&& compute) {
  if (!overlapping) {
    compute(dst.data<float>());
    return;
  }
  Scratch<float> tmp = scratch<float>(dst.numel(), s);
  compute(tmp.ptr);
  FLAS_CUDA(cudaMemcpyAsync(dst.raw(), tmp.ptr, dst.bytes(), cudaMemcpyDeviceToDevice, s));
}

void check_weight_shape(const cuda::Operand& w, const char* op) {
  FLAS_CHECK(w.shape().rank() == 2, op, ": weight must be [out, in], got ", w.shape());
}

}  // namespace

void CudaBackend::linear(const CudaTensor& x, cuda::Operand w_in, cuda::OptionalOperand bias_in, CudaTensor& y) {
  expect_f32(x, "linear", "x");
  expect_f32(y, "linear", "y");
  check_weight_shape(w_in, "linear");
  const std::int64_t N = w_in.shape()[0], K = w_in.shape()[1], M = rows_of(x);
  FLAS_CHECK(x.dim(-1) == K, "linear: x has inner size ", x.dim(-1), ", weight ", w_in.shape(), " expects ", K);
  FLAS_CHECK(y.numel() == M * N, "linear: y has ", y.numel(), " elements, expected ", M * N);
  if (bias_in.present())
    FLAS_CHECK(bias_in.get().numel() == N, "linear: bias has ", bias_in.get().numel(), " elements, expected ", N);
  (void)as_int(M, "linear");
  (void)as_int(N, "linear");
  (void)as_int(K, "linear");
  if (M * N == 0) return;
  const cudaStream_t s = current_stream();
  const DeviceOperand w = weight_operand(w_in, s);
  const k::WeightPtr wp = weight_ptr(w, "linear", "weight");
  const k::WeightPtr bias = bias_in.present() ? weight_ptr(weight_operand(bias_in.get(), s), "linear", "bias")
                                              : k::WeightPtr{};
  into(y, overlaps(x, y), s, [&](float* out) {
    if (M <= small_m_max) {
      k::small_m_linear(x.data<float>(), wp, bias, out, int(M), int(N), int(K), s);
      return;
    }
    if (K == 0) {  // cuBLAS wants leading dimensions >= 1
      k::fill(out, 0.0f, M * N, s);
    } else {
      const GemmOperands g = gemm_operands(w, x.data<float>(), x.numel(), use_bf16_inputs(w, M), s);
      gemm(CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), g.w, g.type, int(K), g.act, g.type, int(K), 0.0f, out,
           int(N), s);
    }
    if (bias.p) k::add_bias(out, bias, M, N, s);
  });
}

void BackwardOps<CudaBackend>::linear_backward(const CudaTensor& x, cuda::Operand w_in, const CudaTensor& dy,
                                               CudaTensor* dx, CudaTensor* dw, CudaTensor* db) {
  check_weight_shape(w_in, "linear_backward");
  const std::int64_t N = w_in.shape()[0], K = w_in.shape()[1], M = rows_of(x);
  check_linear_backward(x, w_in.shape(), dy, dx, dw, db, M);
  (void)as_int(M, "linear_backward");
  (void)as_int(N, "linear_backward");
  (void)as_int(K, "linear_backward");
  const cudaStream_t s = current_stream();
  // Parameter gradients first: they read x and dy, which a caller may let dx overwrite.
  if (dw && N * K * M > 0)  // dwᵀ (K × N) += xᵀ (K × M) · dy (M × N)
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, int(K), int(N), int(M), x.raw(), CUDA_R_32F, int(K), dy.raw(), CUDA_R_32F, int(N),
         1.0f, dw->data<float>(), int(K), s);
  if (db) k::column_dot_accumulate(dy.data<float>(), nullptr, nullptr, M, N, db->data<float>(), s);
  if (!dx || M * K == 0) return;
  if (N == 0) {
    k::fill(dx->data<float>(), 0.0f, M * K, s);
    return;
  }
  const DeviceOperand w = weight_operand(w_in, s);
  (void)weight_ptr(w, "linear_backward", "weight");
  const bool overlapping = overlaps(*dx, dy) || overlaps(*dx, x) || overlaps(dx->raw(), dx->bytes(), w.ptr,
                                                                               std::size_t(w.numel()) * dtype_size(w.dtype));
  into(*dx, overlapping, s, [&](float* out) {  // dxᵀ (K × M) = w-as-(K × N) · dyᵀ (N × M)
    const GemmOperands g = gemm_operands(w, dy.data<float>(), dy.numel(), use_bf16_inputs(w, M), s);
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, int(K), int(M), int(N), g.w, g.type, int(K), g.act, g.type, int(N), 0.0f, out,
         int(K), s);
  });
}

}  // namespace flas
