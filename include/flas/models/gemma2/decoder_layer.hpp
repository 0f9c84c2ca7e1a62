#pragma once
// One Gemma-2 decoder layer over the new tokens of a batch, appending their K/V to the layer's cache:
//   h += N_post_attn(Attn(N_in(h)));  h += N_post_ff(MLP(N_pre_ff(h)))
#include <cmath>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/attention.hpp"
#include "flas/models/gemma2/config.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::gemma2 {

inline HeadLayout head_layout(const Config& c) {
  return {c.num_attention_heads, c.num_key_value_heads, c.head_dim};
}

// The base model's attention rule: finfo.min for invisible keys, scores · query_pre_attn_scalar^−½.
// `window` is the sliding window of sliding layers, or 0 (full layers, and the concept encoder).
inline nn::AttentionParams base_attention_rule(const Config& c, std::int64_t window) {
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(c.query_pre_attn_scalar));
  p.softcap = float(c.attn_logit_softcapping);
  p.rule = nn::MaskRule::hf_min;
  p.window = window;
  return p;
}

// h [B, S, H] is updated in place.
template <Backend B>
void decoder_layer_forward(const Config& c, const LayerWeights& w, std::int64_t window, tensor_t<B>& h,
                           const TokenLayout& at, const Tensor& inv_freq, tensor_t<B>& k_cache,
                           tensor_t<B>& v_cache) {
  const float eps = float(c.rms_norm_eps);
  auto t = new_activation<B>(h.shape());
  B::rms_norm(h, w.input_norm, eps, t);
  auto a = cached_self_attention<B>(w.attn, head_layout(c), base_attention_rule(c, window), t, at, inv_freq,
                                    k_cache, v_cache);
  B::rms_norm(a, w.post_attn_norm, eps, a);
  B::add(h, a);
  B::rms_norm(h, w.pre_ff_norm, eps, t);
  auto m = gated_mlp<B>(w.mlp, t);
  B::rms_norm(m, w.post_ff_norm, eps, m);
  B::add(h, m);
}

}  // namespace flas::gemma2
