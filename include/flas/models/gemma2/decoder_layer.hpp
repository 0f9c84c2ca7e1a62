#pragma once
// One Gemma-2 decoder layer over the new tokens of a batch, appending their K/V to the layer's cache:
//   h += N_post_attn(Attn(N_in(h)));  h += N_post_ff(MLP(N_pre_ff(h)))
// Written once against the Backend op set.
#include <cmath>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/config.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::gemma2 {

// Where the new tokens sit: their positions, the cache slots before them, the slot validity.
struct TokenLayout {
  const Tensor& positions;        // I64 [B, S]
  std::int64_t past;              // slots already filled
  std::int64_t capacity;          // slots per row in the cache
  const std::uint8_t* key_valid;  // [B, capacity]
};

template <Backend B>
tensor_t<B> new_activation(const Shape& s) {
  return tensor_t<B>::empty(s, B::activation_dtype);
}

// Self-attention of the new tokens; k_cache/v_cache are [B, capacity, nKV, hd]. `use_window` lets the
// concept encoder run sliding layers with full attention (SPEC.md: no window there).
template <Backend B>
tensor_t<B> gemma_self_attention(const Config& c, const LayerWeights& w, bool sliding, const tensor_t<B>& x_normed,
                                 const TokenLayout& at, const Tensor& inv_freq, tensor_t<B>& k_cache,
                                 tensor_t<B>& v_cache) {
  const std::int64_t Bn = x_normed.dim(0), S = x_normed.dim(1), hd = c.head_dim;
  const std::int64_t nH = c.num_attention_heads, nKV = c.num_key_value_heads;
  auto q = new_activation<B>({Bn, S, nH, hd});
  auto k = new_activation<B>({Bn, S, nKV, hd});
  auto v = new_activation<B>({Bn, S, nKV, hd});
  B::linear(x_normed, w.q_proj, nullptr, q);
  B::linear(x_normed, w.k_proj, nullptr, k);
  B::linear(x_normed, w.v_proj, nullptr, v);
  B::rope(q, at.positions, inv_freq);
  B::rope(k, at.positions, inv_freq);
  for (std::int64_t b = 0; b < Bn; ++b) {
    auto kd = k_cache[b].slice(at.past, at.past + S);
    auto vd = v_cache[b].slice(at.past, at.past + S);
    B::copy(kd, k[b]);
    B::copy(vd, v[b]);
  }
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(double(c.query_pre_attn_scalar)));
  p.softcap = float(c.attn_logit_softcapping);
  p.rule = nn::MaskRule::hf_min;
  p.causal = true;
  p.window = sliding ? c.sliding_window : 0;
  p.kv_len = at.past + S;
  p.key_valid = at.key_valid;
  auto attn = new_activation<B>({Bn, S, nH, hd});
  B::attention(q, k_cache, v_cache, attn, p);
  auto out = new_activation<B>({Bn, S, c.hidden_size});
  B::linear(attn.view({Bn, S, nH * hd}), w.o_proj, nullptr, out);
  return out;
}

template <Backend B>
tensor_t<B> gemma_mlp(const Config& c, const LayerWeights& w, const tensor_t<B>& x_normed) {
  const Shape inner = x_normed.shape().rank() == 3
                          ? Shape{x_normed.dim(0), x_normed.dim(1), c.intermediate_size}
                          : Shape{x_normed.dim(0), c.intermediate_size};
  auto gate = new_activation<B>(inner);
  auto up = new_activation<B>(inner);
  B::linear(x_normed, w.gate_proj, nullptr, gate);
  B::linear(x_normed, w.up_proj, nullptr, up);
  B::gelu_tanh_mul(gate, up, gate);
  auto out = new_activation<B>(x_normed.shape());
  B::linear(gate, w.down_proj, nullptr, out);
  return out;
}

// h [B, S, H] is updated in place.
template <Backend B>
void decoder_layer_forward(const Config& c, const LayerWeights& w, bool sliding, tensor_t<B>& h,
                           const TokenLayout& at, const Tensor& inv_freq, tensor_t<B>& k_cache,
                           tensor_t<B>& v_cache) {
  const float eps = float(c.rms_norm_eps);
  auto t = new_activation<B>(h.shape());
  B::rms_norm(h, w.input_norm, eps, t);
  auto a = gemma_self_attention<B>(c, w, sliding, t, at, inv_freq, k_cache, v_cache);
  B::rms_norm(a, w.post_attn_norm, eps, a);
  B::add(h, a);
  B::rms_norm(h, w.pre_ff_norm, eps, t);
  auto m = gemma_mlp<B>(c, w, t);
  B::rms_norm(m, w.post_ff_norm, eps, m);
  B::add(h, m);
}

}  // namespace flas::gemma2
