// The row-wise and element-wise ops of CudaBackend: argument checks as ScalarBackend makes them, host
// operands resolved to device memory (transfers.hpp), then one kernel launch each (pointwise.cu).
#include "caching_allocator.hpp"
#include "op_support.hpp"
#include "runtime.hpp"

namespace flas {

using namespace cuda_detail;
namespace k = cuda_kernels;

void CudaBackend::embedding(cuda::Operand ids_in, cuda::Operand table_in, float scale, CudaTensor& out) {
  expect_f32(out, "embedding", "out");
  expect_index_dtype(ids_in, "embedding", "ids");
  FLAS_CHECK(table_in.shape().rank() == 2, "embedding: table must be [vocab, hidden], got ", table_in.shape());
  const std::int64_t n = ids_in.numel(), V = table_in.shape()[0], H = table_in.shape()[1];
  FLAS_CHECK(out.numel() == n * H, "embedding: out has ", out.numel(), " elements, expected ", n * H);
  const Tensor ids_host = host_indices(ids_in);
  const auto* id = ids_host.data<std::int64_t>();
  for (std::int64_t r = 0; r < n; ++r)
    FLAS_CHECK(0 <= id[r] && id[r] < V, "embedding: token id ", id[r], " outside the vocabulary [0, ", V, ")");
  const cudaStream_t s = current_stream();
  const DeviceOperand ids = index_operand(ids_in, s);
  const k::WeightPtr table = weight_ptr(weight_operand(table_in, s), "embedding", "table");
  k::embedding(static_cast<const std::int64_t*>(ids.ptr), table, scale, out.data<float>(), n, H, s);
}

void CudaBackend::rms_norm(const CudaTensor& x, cuda::Operand w_in, float eps, CudaTensor& y) {
  expect_f32(x, "rms_norm", "x");
  expect_f32(y, "rms_norm", "y");
  const std::int64_t D = x.dim(-1), M = rows_of(x);
  FLAS_CHECK(w_in.numel() == D, "rms_norm: weight has ", w_in.numel(), " elements, expected ", D);
  FLAS_CHECK(y.numel() == x.numel(), "rms_norm: y ", y.shape(), " does not match x ", x.shape());
  // Row m is read whole before it is written; another row overlapping would be a race.
  FLAS_CHECK(y.raw() == x.raw() || !overlaps(x, y), "rms_norm: y partially overlaps x");
  (void)as_int(M, "rms_norm");
  const cudaStream_t s = current_stream();
  const k::WeightPtr w = weight_ptr(weight_operand(w_in, s), "rms_norm", "weight");
  k::rms_norm(x.data<float>(), w, eps, y.data<float>(), M, D, s);
}

void CudaBackend::rms_norm_residual(CudaTensor& h, const CudaTensor& x, cuda::Operand w_in, float eps,
                                    cuda::OptionalOperand gate_in) {
  expect_f32(h, "rms_norm_residual", "h");
  expect_f32(x, "rms_norm_residual", "x");
  const std::int64_t D = x.dim(-1), M = rows_of(x);
  FLAS_CHECK(h.numel() == x.numel() && h.dim(-1) == D, "rms_norm_residual: h ", h.shape(), " does not match x ",
             x.shape());
  FLAS_CHECK(w_in.numel() == D, "rms_norm_residual: weight has ", w_in.numel(), " elements, expected ", D);
  if (gate_in.present())
    FLAS_CHECK(gate_in.get().numel() == D, "rms_norm_residual: gate has ", gate_in.get().numel(),
               " elements, expected ", D);
  FLAS_CHECK(h.raw() == x.raw() || !overlaps(h, x), "rms_norm_residual: h partially overlaps x");
  (void)as_int(M, "rms_norm_residual");
  const cudaStream_t s = current_stream();
  const k::WeightPtr w = weight_ptr(weight_operand(w_in, s), "rms_norm_residual", "weight");
  const k::WeightPtr g = gate_in.present()
                             ? weight_ptr(weight_operand(gate_in.get(), s), "rms_norm_residual", "gate")
                             : k::WeightPtr{};
  k::rms_norm_residual(h.data<float>(), x.data<float>(), w, g, eps, M, D, s);
}

void CudaBackend::add(CudaTensor& y, const CudaTensor& x) {
  expect_f32(y, "add", "y");
  expect_f32(x, "add", "x");
  FLAS_CHECK(y.numel() == x.numel(), "add: sizes ", y.shape(), " and ", x.shape(), " differ");
  k::add(y.data<float>(), x.data<float>(), y.numel(), current_stream());
}

void CudaBackend::add_gated(CudaTensor& y, cuda::Operand g_in, const CudaTensor& x) {
  expect_f32(y, "add_gated", "y");
  expect_f32(x, "add_gated", "x");
  FLAS_CHECK(y.numel() == x.numel() && y.dim(-1) == g_in.numel(), "add_gated: y ", y.shape(), ", gate ",
             g_in.shape(), ", x ", x.shape(), " do not match");
  const cudaStream_t s = current_stream();
  const k::WeightPtr g = weight_ptr(weight_operand(g_in, s), "add_gated", "gate");
  k::add_gated(y.data<float>(), g, x.data<float>(), y.numel(), g_in.numel(), s);
}

void CudaBackend::rope(CudaTensor& x, cuda::Operand positions_in, cuda::Operand inv_freq_in) {
  expect_f32(x, "rope", "x");
  FLAS_CHECK(x.rank() == 4, "rope: x must be [B, S, heads, head_dim], got ", x.shape());
  expect_index_dtype(positions_in, "rope", "positions");
  const std::int64_t B = x.dim(0), S = x.dim(1), nh = x.dim(2), hd = x.dim(3);
  FLAS_CHECK(positions_in.numel() == B * S, "rope: positions ", positions_in.shape(), " do not match x ", x.shape());
  FLAS_CHECK(inv_freq_in.numel() == hd / 2 && inv_freq_in.dtype() == DType::F32, "rope: inv_freq ",
             inv_freq_in.shape(), " ", dtype_name(inv_freq_in.dtype()), ", expected F32 with ", hd / 2, " entries");
  const cudaStream_t s = current_stream();
  const DeviceOperand pos = index_operand(positions_in, s);
  const DeviceOperand inv_freq = weight_operand(inv_freq_in, s);
  k::rope(x.data<float>(), static_cast<const std::int64_t*>(pos.ptr), static_cast<const float*>(inv_freq.ptr), B * S,
          nh, hd, 1.0f, s);
}

void CudaBackend::gelu_tanh_mul(const CudaTensor& gate, const CudaTensor& up, CudaTensor& out) {
  expect_f32(gate, "gelu_tanh_mul", "gate");
  expect_f32(up, "gelu_tanh_mul", "up");
  expect_f32(out, "gelu_tanh_mul", "out");
  FLAS_CHECK(gate.numel() == out.numel() && up.numel() == out.numel(), "gelu_tanh_mul: gate ", gate.shape(), ", up ",
             up.shape(), ", out ", out.shape(), " do not match");
  k::gelu_tanh_mul(gate.data<float>(), up.data<float>(), out.data<float>(), out.numel(), current_stream());
}

void CudaBackend::softcap(CudaTensor& x, float cap) {
  expect_f32(x, "softcap", "x");
  k::softcap(x.data<float>(), cap, x.numel(), current_stream());
}

void CudaBackend::axpy(CudaTensor& y, float a, const CudaTensor& x) {
  expect_f32(y, "axpy", "y");
  expect_f32(x, "axpy", "x");
  FLAS_CHECK(y.numel() == x.numel(), "axpy: sizes ", y.shape(), " and ", x.shape(), " differ");
  k::axpy(y.data<float>(), a, x.data<float>(), y.numel(), current_stream());
}

void CudaBackend::scale(CudaTensor& x, float a) {
  expect_f32(x, "scale", "x");
  k::scale(x.data<float>(), a, x.numel(), current_stream());
}

void CudaBackend::fill(CudaTensor& x, float value) {
  expect_f32(x, "fill", "x");
  k::fill(x.data<float>(), value, x.numel(), current_stream());
}

void CudaBackend::silu(CudaTensor& x) {
  expect_f32(x, "silu", "x");
  k::silu(x.data<float>(), x.numel(), current_stream());
}

// memmove semantics, as the reference: an overlapping copy goes through a scratch buffer.
void CudaBackend::copy(CudaTensor& dst, const CudaTensor& src) {
  FLAS_CHECK(dst.bytes() == src.bytes() && dst.dtype() == src.dtype(), "copy: ", dst.shape(), " ",
             dtype_name(dst.dtype()), " <- ", src.shape(), " ", dtype_name(src.dtype()));
  if (dst.raw() == src.raw() || src.bytes() == 0) return;
  const cudaStream_t s = current_stream();
  if (!overlaps(dst, src)) {
    FLAS_CUDA(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, s));
    return;
  }
  const Scratch<std::byte> tmp = scratch<std::byte>(std::int64_t(src.bytes()), s);
  FLAS_CUDA(cudaMemcpyAsync(tmp.ptr, src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, s));
  FLAS_CUDA(cudaMemcpyAsync(dst.raw(), tmp.ptr, src.bytes(), cudaMemcpyDeviceToDevice, s));
}

}  // namespace flas
