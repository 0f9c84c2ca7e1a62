// BackwardOps<CudaBackend>: the element-wise and row-wise VJPs and cross-entropy (linear_backward
// lives in linear.cpp, attention_backward in attention_ops.cpp). Parameter gradients accumulate
// through column sums, computed before any cotangent output is written (dx may be dy).
#include <vector>

#include "caching_allocator.hpp"
#include "flas/backends/cuda_backward.hpp"
#include "op_support.hpp"
#include "runtime.hpp"

namespace flas {
namespace {

using namespace cuda_detail;
namespace k = cuda_kernels;

void expect_param_grad(const CudaTensor& g, std::int64_t n, const char* op, const char* what) {
  FLAS_CHECK(g.dtype() == DType::F32 && g.numel() == n, op, ": ", what, " is ", dtype_name(g.dtype()), " ", g.shape(),
             ", expected F32 with ", n, " elements");
}

void expect_same_size(std::initializer_list<const CudaTensor*> ts, const char* op) {
  const CudaTensor& first = **ts.begin();
  for (const CudaTensor* t : ts) {
    expect_f32(*t, op, "an input or output");
    FLAS_CHECK(t->numel() == first.numel(), op, ": ", t->shape(), " does not match ", first.shape());
  }
}

// Loss and gradient of (optionally soft-capped) logits against labels; see kernels.hpp.
double cross_entropy_impl(const CudaTensor& logits, float cap, const cuda::Operand& labels_in, CudaTensor* dlogits,
                          const char* op) {
  expect_f32(logits, op, "logits");
  const std::int64_t V = logits.dim(-1), M = rows_of(logits);
  FLAS_CHECK(V > 0 && labels_in.dtype() == DType::I64 && labels_in.numel() == M, op, ": labels ",
             dtype_name(labels_in.dtype()), " ", labels_in.shape(), " do not match logits ", logits.shape(),
             " (expected I64 with one label per row)");
  if (dlogits) {
    expect_f32(*dlogits, op, "dlogits");
    FLAS_CHECK(dlogits->numel() == logits.numel(), op, ": dlogits ", dlogits->shape(), " does not match logits ",
               logits.shape());
    FLAS_CHECK(dlogits->raw() == logits.raw() || !overlaps(*dlogits, logits), op,
               ": dlogits partially overlaps logits");
  }
  const Tensor labels = host_indices(labels_in);
  const auto* lab = labels.data<std::int64_t>();
  std::int64_t count = 0;
  for (std::int64_t m = 0; m < M; ++m) {
    FLAS_CHECK(lab[m] == ignore_label || (0 <= lab[m] && lab[m] < V), op, ": label ", lab[m], " at row ", m,
               " is outside [0, ", V, ") and not ", ignore_label);
    count += lab[m] != ignore_label;
  }
  (void)as_int(M, op);
  const cudaStream_t s = current_stream();
  const DeviceOperand labels_dev = index_operand(labels_in, s);
  const Scratch<float> row_loss = scratch<float>(M, s);
  const float inv_count = count ? 1.0f / float(count) : 0.0f;
  k::cross_entropy(logits.data<float>(), static_cast<const std::int64_t*>(labels_dev.ptr), cap, inv_count,
                   dlogits ? dlogits->data<float>() : nullptr, row_loss.ptr, M, V, s);
  std::vector<float> losses(static_cast<std::size_t>(M));
  copy_to_host(losses.data(), row_loss.ptr, losses.size() * sizeof(float), s);
  double total = 0;
  for (float l : losses) total += double(l);
  return count ? total / double(count) : 0.0;
}

}  // namespace

void BackwardOps<CudaBackend>::rms_norm_backward(const CudaTensor& x, cuda::Operand w_in, float eps,
                                                 const CudaTensor& dy, CudaTensor& dx, CudaTensor* dw) {
  expect_same_size({&x, &dy, &dx}, "rms_norm_backward");
  const std::int64_t D = x.dim(-1), M = rows_of(x);
  FLAS_CHECK(w_in.numel() == D, "rms_norm_backward: w ", w_in.shape(), " does not match x ", x.shape());
  if (dw) expect_param_grad(*dw, D, "rms_norm_backward", "dw");
  (void)as_int(M, "rms_norm_backward");
  const cudaStream_t s = current_stream();
  const k::WeightPtr w = weight_ptr(weight_operand(w_in, s), "rms_norm_backward", "w");
  const Scratch<float> r = scratch<float>(M, s), c = scratch<float>(M, s);
  k::rms_norm_row_stats(x.data<float>(), w, dy.data<float>(), eps, r.ptr, c.ptr, M, D, s);
  if (dw) k::column_dot_accumulate(x.data<float>(), dy.data<float>(), r.ptr, M, D, dw->data<float>(), s);
  k::rms_norm_dx(x.data<float>(), w, dy.data<float>(), r.ptr, c.ptr, dx.data<float>(), M, D, s);
}

void BackwardOps<CudaBackend>::add_gated_backward(cuda::Operand g_in, const CudaTensor& x, const CudaTensor& dy,
                                                  CudaTensor& dx, CudaTensor* dg) {
  expect_same_size({&x, &dy, &dx}, "add_gated_backward");
  const std::int64_t D = g_in.numel(), n = x.numel();
  FLAS_CHECK(D > 0 && x.dim(-1) == D, "add_gated_backward: gate ", g_in.shape(), ", x ", x.shape(), ", dy ",
             dy.shape(), ", dx ", dx.shape(), " do not match");
  if (dg) expect_param_grad(*dg, D, "add_gated_backward", "dg");
  const cudaStream_t s = current_stream();
  const k::WeightPtr g = weight_ptr(weight_operand(g_in, s), "add_gated_backward", "gate");
  if (dg) k::column_dot_accumulate(dy.data<float>(), x.data<float>(), nullptr, n / D, D, dg->data<float>(), s);
  k::gate_product(dx.data<float>(), g, dy.data<float>(), n, D, s);
}

void BackwardOps<CudaBackend>::rope_backward(CudaTensor& dx, cuda::Operand positions_in, cuda::Operand inv_freq_in) {
  expect_f32(dx, "rope_backward", "dx");
  FLAS_CHECK(dx.rank() == 4, "rope_backward: dx must be [B, S, heads, head_dim], got ", dx.shape());
  expect_index_dtype(positions_in, "rope_backward", "positions");
  const std::int64_t B = dx.dim(0), S = dx.dim(1), nh = dx.dim(2), hd = dx.dim(3);
  FLAS_CHECK(positions_in.numel() == B * S, "rope_backward: positions ", positions_in.shape(), " do not match dx ",
             dx.shape());
  FLAS_CHECK(inv_freq_in.numel() == hd / 2 && inv_freq_in.dtype() == DType::F32, "rope_backward: inv_freq has ",
             inv_freq_in.numel(), " entries, expected ", hd / 2, " (F32)");
  const cudaStream_t s = current_stream();
  const DeviceOperand pos = index_operand(positions_in, s);
  const DeviceOperand inv_freq = weight_operand(inv_freq_in, s);
  k::rope(dx.data<float>(), static_cast<const std::int64_t*>(pos.ptr), static_cast<const float*>(inv_freq.ptr), B * S,
          nh, hd, -1.0f, s);
}

void BackwardOps<CudaBackend>::gelu_tanh_mul_backward(const CudaTensor& gate, const CudaTensor& up,
                                                      const CudaTensor& dout, CudaTensor& dgate, CudaTensor& dup) {
  expect_same_size({&gate, &up, &dout, &dgate, &dup}, "gelu_tanh_mul_backward");
  k::gelu_tanh_mul_backward(gate.data<float>(), up.data<float>(), dout.data<float>(), dgate.data<float>(),
                            dup.data<float>(), gate.numel(), current_stream());
}

void BackwardOps<CudaBackend>::softcap_backward(const CudaTensor& y_capped, float cap, const CudaTensor& dy,
                                                CudaTensor& dx) {
  expect_same_size({&y_capped, &dy, &dx}, "softcap_backward");
  FLAS_CHECK(cap > 0, "softcap_backward: cap must be positive, got ", cap);
  k::softcap_backward(y_capped.data<float>(), cap, dy.data<float>(), dx.data<float>(), dx.numel(), current_stream());
}

void BackwardOps<CudaBackend>::silu_backward(const CudaTensor& x, const CudaTensor& dy, CudaTensor& dx) {
  expect_same_size({&x, &dy, &dx}, "silu_backward");
  k::silu_backward(x.data<float>(), dy.data<float>(), dx.data<float>(), x.numel(), current_stream());
}

double BackwardOps<CudaBackend>::cross_entropy(const CudaTensor& logits, cuda::Operand labels, CudaTensor* dlogits) {
  return cross_entropy_impl(logits, 0.0f, labels, dlogits, "cross_entropy");
}

double BackwardOps<CudaBackend>::softcapped_cross_entropy(const CudaTensor& raw_logits, float cap,
                                                          cuda::Operand labels, CudaTensor* draw) {
  FLAS_CHECK(cap > 0, "softcapped_cross_entropy: cap must be positive, got ", cap);
  return cross_entropy_impl(raw_logits, cap, labels, draw, "softcapped_cross_entropy");
}

}  // namespace flas
