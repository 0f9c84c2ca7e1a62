#pragma once
// BackwardOps for the CPU backend: the VJPs a training step runs, compiled into flas::cpu next to the
// forward ops (declarations only here; oneDNN and OpenMP stay inside the library).
//  - linear_backward: oneDNN matmuls reading W, dy and x in place through strided descriptors
//    (dx = dy·W, dW += dyᵀ·x); bf16 weights are widened tile by tile, never as a whole.
//  - attention_backward: blocked like the forward, probabilities recomputed from q and k in f32,
//    one work unit per (batch row, kv head) so that each thread owns its dk/dv rows.
//  - the element-wise and row-wise VJPs and cross-entropy: vectorised f32 loops over rows on OpenMP.
// Semantics (write / accumulate / nullptr, aliasing) are those of flas/core/backward.hpp and of the
// scalar backend's BackwardOps (scalar_backward.hpp), the oracle every op is tested against.
#include "flas/backends/cpu.hpp"
#include "flas/core/backward.hpp"

namespace flas {

template <>
struct BackwardOps<CpuBackend> {
  static void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db);
  static void rms_norm_backward(const Tensor& x, const Tensor& w, float eps, const Tensor& dy, Tensor& dx, Tensor* dw);
  static void add_gated_backward(const Tensor& g, const Tensor& x, const Tensor& dy, Tensor& dx, Tensor* dg);
  static void rope_backward(Tensor& dx, const Tensor& positions, const Tensor& inv_freq);
  static void gelu_tanh_mul_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor& dgate,
                                     Tensor& dup);
  static void softcap_backward(const Tensor& y, float cap, const Tensor& dy, Tensor& dx);
  static void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& dout, const nn::AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv);
  static void silu_backward(const Tensor& x, const Tensor& dy, Tensor& dx);
  static double cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits);
};

static_assert(TrainableBackend<CpuBackend>);

}  // namespace flas
