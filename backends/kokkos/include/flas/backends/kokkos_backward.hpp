#pragma once
// BackwardOps for the Kokkos backend: the VJPs of flas/core/backward.hpp over one execution space.
//  - linear_backward: two KokkosBlas::gemm calls (dx = dy·W, dW += dyᵀ·x), db as column sums.
//  - row-wise VJPs (rms_norm, cross_entropy): one team per row; parameter gradients (dw, dg, db) as a
//    second kernel over columns, so no two threads add into one element (no atomics, deterministic).
//  - attention_backward: one team per (batch, query, head) recomputes the probabilities and writes dq,
//    keeping probabilities and score cotangents in a [B, nH, Sq, Sk] buffer; one team per (batch, key,
//    kv head) then sums dk and dv over the queries and the heads of its group.
// Arithmetic follows the scalar backend's BackwardOps (double accumulation, the forward's f32
// roundings when recomputing), which is the oracle the conformance tests compare with.
#include "flas/backends/kokkos.hpp"
#include "flas/core/backward.hpp"

namespace flas {

template <class E>
struct BackwardOps<KokkosBackend<E>> {
  using tensor = typename KokkosBackend<E>::tensor;
  static void linear_backward(const tensor& x, const tensor& w, const tensor& dy, tensor* dx, tensor* dw, tensor* db);
  static void rms_norm_backward(const tensor& x, const tensor& w, float eps, const tensor& dy, tensor& dx, tensor* dw);
  static void add_gated_backward(const tensor& g, const tensor& x, const tensor& dy, tensor& dx, tensor* dg);
  static void rope_backward(tensor& dx, const tensor& positions, const tensor& inv_freq);
  static void gelu_tanh_mul_backward(const tensor& gate, const tensor& up, const tensor& dout, tensor& dgate,
                                     tensor& dup);
  static void softcap_backward(const tensor& y, float cap, const tensor& dy, tensor& dx);
  static void attention_backward(const tensor& q, const tensor& k, const tensor& v, const tensor& out,
                                 const tensor& dout, const nn::AttentionParams& p, tensor& dq, tensor& dk, tensor& dv);
  static void silu_backward(const tensor& x, const tensor& dy, tensor& dx);
  static double cross_entropy(const tensor& logits, const tensor& labels, tensor* dlogits);
};

extern template struct BackwardOps<KokkosBackend<Kokkos::DefaultExecutionSpace>>;
static_assert(TrainableBackend<KokkosBackend<>>);

}  // namespace flas
