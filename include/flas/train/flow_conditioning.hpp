#pragma once
// The concept side of the flow for training. The concept encoder's output C is frozen (computed once per
// batch, no gradient), but what the flow derives from it depends on flow parameters and is computed
// once per batch and shared by every Euler step and block evaluation:
//   cross-attention:  K = rope(N_k(k_proj·C)) and V = v_proj·C per block (condition/cross_attention.hpp);
//   pooled-additive:  P = N_post_cross(concept_proj·mean(C)) per block.
// Their cotangents are therefore gathered over every evaluation (ConditioningCotangents) and turned
// into parameter gradients once, after the whole backward pass (conditioning_backward).
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/condition/pooled_concept.hpp"
#include "flas/core/backward.hpp"
#include "flas/core/shared_input_linear.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/train/activations.hpp"

namespace flas::train {

template <Backend B>
struct ConditioningTape {
  typename field::FlasFlow<B>::Conditioning cond;  // exactly what FlasFlow::condition would give
  condition::EncodedConcepts<B> concepts;           // C [B, Lc, H] and its mask, one concept per batch row
  Tensor concept_positions;                         // I64 [B, Lc]: 0..Lc−1 in every row
  std::vector<tensor_t<B>> k_proj_out;              // per block: k_proj·C before k_norm (cross-attention)
  tensor_t<B> concept_mean;                         // mean(C) over real tokens [B, H] (pooled)
  std::vector<tensor_t<B>> pooled_proj_out;         // per block: concept_proj·mean(C) before its norm (pooled)
};

// Cotangents of the per-block conditioning, accumulated over every evaluation of the field.
template <Backend B>
struct ConditioningCotangents {
  std::vector<tensor_t<B>> dk, dv;   // per block [B, Lc, nKV, hd]
  std::vector<tensor_t<B>> dpooled;  // per block [B, H]
};

// The same numbers as FlasFlow::condition, keeping what the VJP needs.
template <Backend B>
ConditioningTape<B> record_conditioning(const field::FlasFlow<B>& flow, const condition::EncodedConcepts<B>& concepts,
                                        const Tensor& inv_freq) {
  const auto& c = flow.base_config();
  const auto& w = flow.weights();
  const float eps = float(c.rms_norm_eps);
  const std::int64_t Bn = concepts.rows(), Lc = concepts.length();
  ConditioningTape<B> tape;
  tape.concepts = concepts;
  Tensor positions = Tensor::empty({Bn, Lc}, DType::I64);
  for (std::int64_t i = 0; i < Bn * Lc; ++i) positions.data<std::int64_t>()[i] = i % Lc;
  tape.concept_positions = positions;
  if (w.switches.cross_attn) {
    const Shape kv{Bn, Lc, c.num_key_value_heads, c.head_dim};
    for (const auto& blk : w.blocks) {
      condition::ConceptKV<B> ckv{activation<B>(kv), activation<B>(kv), concepts.mask};
      auto k_raw = activation<B>(kv);
      linear_shared_input<B>(concepts.hidden, {{&blk.cross.k_proj, &k_raw}, {&blk.cross.v_proj, &ckv.v}});
      B::rms_norm(k_raw, blk.cross.k_norm, eps, ckv.k);
      B::rope(ckv.k, tape.concept_positions, inv_freq);
      tape.cond.per_block.push_back(ckv);
      tape.k_proj_out.push_back(k_raw);
    }
  }
  if (w.switches.pooled) {
    tape.concept_mean = condition::masked_mean<B>(concepts);
    for (const auto& blk : w.blocks) {
      auto raw = activation<B>(tape.concept_mean.shape()), p = activation<B>(tape.concept_mean.shape());
      B::linear(tape.concept_mean, blk.concept_proj, nullptr, raw);
      B::rms_norm(raw, blk.post_cross_norm, eps, p);
      tape.cond.pooled.push_back(p);
      tape.pooled_proj_out.push_back(raw);
    }
  }
  return tape;
}

template <Backend B>
ConditioningCotangents<B> zero_conditioning_cotangents(const ConditioningTape<B>& tape) {
  ConditioningCotangents<B> cot;
  for (const auto& kv : tape.cond.per_block) {
    cot.dk.push_back(zero_activation<B>(kv.k.shape()));
    cot.dv.push_back(zero_activation<B>(kv.v.shape()));
  }
  for (const auto& p : tape.cond.pooled) cot.dpooled.push_back(zero_activation<B>(p.shape()));
  return cot;
}

// Adds the parameter gradients of the conditioning into `grads` (activation dtype). Consumes `cot`.
template <TrainableBackend B>
void conditioning_backward(const field::FlasFlow<B>& flow, const ConditioningTape<B>& tape,
                           ConditioningCotangents<B>& cot, const Tensor& inv_freq, field::FlowWeights& grads) {
  using Ops = BackwardOps<B>;
  const auto& w = flow.weights();
  const float eps = float(flow.base_config().rms_norm_eps);
  const auto& C = tape.concepts.hidden;
  for (std::size_t i = 0; i < cot.dk.size(); ++i) {
    auto& g = grads.blocks[i].cross;
    auto& dk = cot.dk[i];
    Ops::rope_backward(dk, tape.concept_positions, inv_freq);
    Ops::rms_norm_backward(tape.k_proj_out[i], w.blocks[i].cross.k_norm, eps, dk, dk, &g.k_norm);
    Ops::linear_backward(C, w.blocks[i].cross.k_proj, dk, nullptr, &g.k_proj, nullptr);
    Ops::linear_backward(C, w.blocks[i].cross.v_proj, cot.dv[i], nullptr, &g.v_proj, nullptr);
  }
  for (std::size_t i = 0; i < cot.dpooled.size(); ++i) {
    auto& dp = cot.dpooled[i];
    Ops::rms_norm_backward(tape.pooled_proj_out[i], w.blocks[i].post_cross_norm, eps, dp, dp,
                           &grads.blocks[i].post_cross_norm);
    Ops::linear_backward(tape.concept_mean, w.blocks[i].concept_proj, dp, nullptr, &grads.blocks[i].concept_proj,
                         nullptr);
  }
  cot = {};
}

}  // namespace flas::train
