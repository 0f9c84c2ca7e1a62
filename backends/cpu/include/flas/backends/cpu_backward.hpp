#pragma once
// BackwardOps for the CPU backend. The matmul-shaped VJPs — nearly all of a training step's FLOPs —
// run through CpuBackend::linear (oneDNN / the streaming kernels) on transposed operands:
//   dx = dy·W      = linear(dy, Wᵀ)          dW += dyᵀ·x  = linear(dyᵀ, xᵀ)
// Every other VJP is elementwise or attention-shaped on the same host f32 tensors, and reuses the
// scalar backend's (the oracle they are tested against).
#include "flas/backends/cpu.hpp"
#include "flas/backends/scalar_backward.hpp"
#include "flas/core/backward.hpp"

namespace flas {

template <>
struct BackwardOps<CpuBackend> {
  using Scalar = BackwardOps<ScalarBackend<float>>;

  // [R, C] (any floating dtype) -> its transpose [C, R] in f32.
  static Tensor transposed_f32(const Tensor& a) {
    const std::int64_t R = a.numel() / a.dim(-1), C = a.dim(-1);
    Tensor t = Tensor::empty({C, R}, DType::F32);
    float* out = t.data<float>();
    constexpr std::int64_t tile = 32;
    for (std::int64_t r0 = 0; r0 < R; r0 += tile)
      for (std::int64_t c0 = 0; c0 < C; c0 += tile)
        for (std::int64_t r = r0; r < std::min(R, r0 + tile); ++r)
          for (std::int64_t c = c0; c < std::min(C, c0 + tile); ++c) out[c * R + r] = float(element_as_double(a, r * C + c));
    return t;
  }

  static void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
    const std::int64_t N = w.dim(0), K = w.dim(1), M = x.numel() / K;
    if (dx) {
      FLAS_CHECK(dx->numel() == M * K, "linear_backward: dx has ", dx->numel(), " elements, expected ", M * K);
      Tensor flat = dx->view({M, K});
      CpuBackend::linear(dy.view({M, N}), transposed_f32(w), nullptr, flat);
    }
    if (dw) {
      FLAS_CHECK(dw->dtype() == DType::F32 && dw->numel() == N * K, "linear_backward: dw must be F32 [", N, ", ", K, "]");
      Tensor prod = Tensor::empty({N, K}, DType::F32);
      CpuBackend::linear(transposed_f32(dy.view({M, N})), transposed_f32(x.view({M, K})), nullptr, prod);
      Tensor acc = dw->view({N, K});
      CpuBackend::add(acc, prod);
    }
    if (db) {
      FLAS_CHECK(db->dtype() == DType::F32 && db->numel() == N, "linear_backward: db must be F32 [", N, "]");
      const float* g = dy.data<float>();
      float* b = db->data<float>();
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < N; ++n) b[n] += g[m * N + n];
    }
  }

  static void rms_norm_backward(const Tensor& x, const Tensor& w, float eps, const Tensor& dy, Tensor& dx, Tensor* dw) {
    Scalar::rms_norm_backward(x, w, eps, dy, dx, dw);
  }
  static void add_gated_backward(const Tensor& g, const Tensor& x, const Tensor& dy, Tensor& dx, Tensor* dg) {
    Scalar::add_gated_backward(g, x, dy, dx, dg);
  }
  static void rope_backward(Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
    Scalar::rope_backward(dx, positions, inv_freq);
  }
  static void gelu_tanh_mul_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor& dgate, Tensor& dup) {
    Scalar::gelu_tanh_mul_backward(gate, up, dout, dgate, dup);
  }
  static void softcap_backward(const Tensor& y, float cap, const Tensor& dy, Tensor& dx) {
    Scalar::softcap_backward(y, cap, dy, dx);
  }
  static void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                                 const nn::AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv) {
    Scalar::attention_backward(q, k, v, out, dout, p, dq, dk, dv);
  }
  static void silu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) { Scalar::silu_backward(x, dy, dx); }
  static double cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits) {
    return Scalar::cross_entropy(logits, labels, dlogits);
  }
};

static_assert(TrainableBackend<CpuBackend>);

}  // namespace flas
