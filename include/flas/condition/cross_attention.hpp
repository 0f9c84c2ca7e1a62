#pragma once
// FLAS cross-attention conditioning: queries from the activation stream, keys/values from the encoded
// concept. q and k get an RMSNorm over head_dim ((1 + w), one weight shared by all heads) before RoPE;
// query positions are the tokens' positions, key positions 0..Lc−1; scores · hd^−½, soft-capped, then
// masked concept keys are replaced by −1e4; not causal. The concept side (k, v) is computed once per
// concept and reused by every Euler step and decode token.
#include <cmath>

#include "flas/condition/concept_encoder.hpp"
#include "flas/core/backend.hpp"
#include "flas/core/shared_input_linear.hpp"
#include "flas/models/gemma2/attention.hpp"

namespace flas::condition {

struct CrossAttentionWeights {
  Tensor q_proj, k_proj, v_proj, o_proj, q_norm, k_norm;
};

// Keys and values of one cross-attention for the concept of every batch row.
template <Backend B>
struct ConceptKV {
  tensor_t<B> k, v;  // [B, Lc, nKV, hd]
  Tensor mask;       // U8 [B, Lc]
};

template <Backend B>
ConceptKV<B> concept_keys_values(const CrossAttentionWeights& w, const gemma2::HeadLayout& hl, float eps,
                                 const EncodedConcepts<B>& concepts, const Tensor& inv_freq) {
  const std::int64_t Bn = concepts.rows(), Lc = concepts.length();
  ConceptKV<B> kv{gemma2::new_activation<B>({Bn, Lc, hl.kv_heads, hl.head_dim}),
                  gemma2::new_activation<B>({Bn, Lc, hl.kv_heads, hl.head_dim}), concepts.mask};
  linear_shared_input<B>(concepts.hidden, {{&w.k_proj, &kv.k}, {&w.v_proj, &kv.v}});
  B::rms_norm(kv.k, w.k_norm, eps, kv.k);
  Tensor pos = Tensor::empty({Bn, Lc}, DType::I64);
  for (std::int64_t i = 0; i < Bn * Lc; ++i) pos.data<std::int64_t>()[i] = i % Lc;
  B::rope(kv.k, pos, inv_freq);
  return kv;
}

// x_normed [B, S, H] with positions [B, S] -> o-projected output [B, S, H].
template <Backend B>
tensor_t<B> cross_attention(const CrossAttentionWeights& w, const gemma2::HeadLayout& hl, float eps, float softcap,
                            const tensor_t<B>& x_normed, const Tensor& positions, const ConceptKV<B>& kv,
                            const Tensor& inv_freq) {
  const std::int64_t Bn = x_normed.dim(0), S = x_normed.dim(1), H = x_normed.dim(2);
  FLAS_CHECK(kv.k.dim(0) == Bn, "cross-attention: ", Bn, " rows but concepts for ", kv.k.dim(0));
  auto q = gemma2::new_activation<B>({Bn, S, hl.heads, hl.head_dim});
  B::linear(x_normed, w.q_proj, nullptr, q);
  B::rms_norm(q, w.q_norm, eps, q);
  B::rope(q, positions, inv_freq);
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(double(hl.head_dim)));
  p.softcap = softcap;
  p.rule = nn::MaskRule::replace_neg1e4;
  p.causal = false;
  p.key_valid = kv.mask.template data<std::uint8_t>();
  auto attn = gemma2::new_activation<B>({Bn, S, hl.heads, hl.head_dim});
  B::attention(q, kv.k, kv.v, attn, p);
  auto out = gemma2::new_activation<B>({Bn, S, H});
  B::linear(attn.view({Bn, S, hl.heads * hl.head_dim}), w.o_proj, nullptr, out);
  return out;
}

}  // namespace flas::condition
