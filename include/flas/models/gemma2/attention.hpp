#pragma once
// Gemma-2 style self-attention of new tokens over a per-layer KV cache: q/k/v projections, RoPE on
// the tokens' positions, the new K/V appended at slots [past, past + S), soft-capped attention under a
// mask rule, o projection. The base model (hf_min rule, sliding window on some layers) and the FLAS
// flow's self-attention (flas_additive rule, no window) both run through here.
#include "flas/core/backend.hpp"
#include "flas/core/shared_input_linear.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::gemma2 {

// Where the new tokens sit: their positions, the cache slots before them, the slot validity.
struct TokenLayout {
  const Tensor& positions;        // I64 [B, S]
  std::int64_t past;              // slots already filled
  std::int64_t capacity;          // slots per row in the cache
  const std::uint8_t* key_valid;  // [B, capacity]
};

struct HeadLayout {
  std::int64_t heads, kv_heads, head_dim;
};

template <Backend B>
tensor_t<B> new_activation(const Shape& s) {
  return tensor_t<B>::empty(s, B::activation_dtype);
}

// x_normed [B, S, H]; k_cache / v_cache [B, capacity, nKV, hd]; `mask` supplies scale, softcap, rule
// and window (its kv_len and key_valid are filled in here). Returns the o-projected output [B, S, H].
template <Backend B>
tensor_t<B> cached_self_attention(const AttentionWeights& w, const HeadLayout& hl, nn::AttentionParams mask,
                                  const tensor_t<B>& x_normed, const TokenLayout& at, const Tensor& inv_freq,
                                  tensor_t<B>& k_cache, tensor_t<B>& v_cache) {
  const std::int64_t Bn = x_normed.dim(0), S = x_normed.dim(1), H = x_normed.dim(2);
  auto q = new_activation<B>({Bn, S, hl.heads, hl.head_dim});
  auto k = new_activation<B>({Bn, S, hl.kv_heads, hl.head_dim});
  auto v = new_activation<B>({Bn, S, hl.kv_heads, hl.head_dim});
  linear_shared_input<B>(x_normed, {{&w.q_proj, &q}, {&w.k_proj, &k}, {&w.v_proj, &v}});
  B::rope(q, at.positions, inv_freq);
  B::rope(k, at.positions, inv_freq);
  for (std::int64_t b = 0; b < Bn; ++b) {
    auto kd = k_cache[b].slice(at.past, at.past + S);
    auto vd = v_cache[b].slice(at.past, at.past + S);
    B::copy(kd, k[b]);
    B::copy(vd, v[b]);
  }
  mask.causal = true;
  mask.kv_len = at.past + S;
  mask.key_valid = at.key_valid;
  auto attn = new_activation<B>({Bn, S, hl.heads, hl.head_dim});
  B::attention(q, k_cache, v_cache, attn, mask);
  auto out = new_activation<B>({Bn, S, H});
  B::linear(attn.view({Bn, S, hl.heads * hl.head_dim}), w.o_proj, nullptr, out);
  return out;
}

// down(gelu_tanh(gate·x) ⊙ up·x) over x [..., H].
template <Backend B>
tensor_t<B> gated_mlp(const MlpWeights& w, const tensor_t<B>& x_normed) {
  Shape inner = x_normed.shape();
  inner[inner.rank() - 1] = w.gate_proj.dim(0);
  auto gate = new_activation<B>(inner);
  auto up = new_activation<B>(inner);
  linear_shared_input<B>(x_normed, {{&w.gate_proj, &gate}, {&w.up_proj, &up}});
  B::gelu_tanh_mul(gate, up, gate);
  auto out = new_activation<B>(x_normed.shape());
  B::linear(gate, w.down_proj, nullptr, out);
  return out;
}

}  // namespace flas::gemma2
