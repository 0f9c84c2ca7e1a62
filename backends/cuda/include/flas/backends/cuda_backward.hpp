#pragma once
// BackwardOps for the CUDA backend: the VJPs of CudaBackend's forwards with the conventions of
// flas/core/backward.hpp (write / accumulate / nullptr), matching BackwardOps<ScalarBackend<T>>.
// Weights, positions and labels may be host or device tensors (see cuda.hpp); activations, their
// cotangents and parameter gradients are F32 device tensors.
//
// Every reduction is deterministic: parameter gradients are column sums (no atomics), and
// attention_backward computes dq per query row and dk/dv per key (the probabilities recomputed from
// per-row softmax statistics), so two runs give the same bits.
#include "flas/backends/cuda.hpp"
#include "flas/core/backward.hpp"

namespace flas {

template <>
struct BackwardOps<CudaBackend> {
  // dx = dy·w (write); dw += dyᵀ·x, db += Σ_rows dy. dx uses CudaBackend::precision() for bf16 weights.
  static void linear_backward(const CudaTensor& x, cuda::Operand w, const CudaTensor& dy, CudaTensor* dx,
                              CudaTensor* dw, CudaTensor* db);
  static void rms_norm_backward(const CudaTensor& x, cuda::Operand w, float eps, const CudaTensor& dy,
                                CudaTensor& dx, CudaTensor* dw);
  static void add_gated_backward(cuda::Operand g, const CudaTensor& x, const CudaTensor& dy, CudaTensor& dx,
                                 CudaTensor* dg);
  static void rope_backward(CudaTensor& dx, cuda::Operand positions, cuda::Operand inv_freq);
  static void gelu_tanh_mul_backward(const CudaTensor& gate, const CudaTensor& up, const CudaTensor& dout,
                                     CudaTensor& dgate, CudaTensor& dup);
  static void softcap_backward(const CudaTensor& y_capped, float cap, const CudaTensor& dy, CudaTensor& dx);
  static void attention_backward(const CudaTensor& q, const CudaTensor& k, const CudaTensor& v,
                                 const CudaTensor& out, const CudaTensor& dout, const nn::AttentionParams& p,
                                 CudaTensor& dq, CudaTensor& dk, CudaTensor& dv);
  static void silu_backward(const CudaTensor& x, const CudaTensor& dy, CudaTensor& dx);
  // Mean loss over labelled rows (synchronises to read it back); dlogits may be logits.
  static double cross_entropy(const CudaTensor& logits, cuda::Operand labels, CudaTensor* dlogits);

  // Extension: the final soft-cap fused in. `raw_logits` are h·Eᵀ before the cap; the loss is that of
  // cross_entropy(cap·tanh(raw/cap)) and draw (may be raw_logits) its gradient w.r.t. the raw logits —
  // cross_entropy followed by softcap_backward, without materialising the capped logits.
  static double softcapped_cross_entropy(const CudaTensor& raw_logits, float cap, cuda::Operand labels,
                                         CudaTensor* draw);
};

static_assert(TrainableBackend<CudaBackend>);

}  // namespace flas
