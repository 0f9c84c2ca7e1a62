#pragma once
// The FLAS velocity field v(h, t, c): B blocks of
//   x0 = x + e(t);  x1 = x0 + g_c ⊙ N(CrossAttn(N(x0), C));  x2 = x1 + g_s ⊙ N(SelfAttn(N(x1)));
//   x3 = x2 + g_m ⊙ N(MLP(N(x2)))
// and v = x_B − h (SPEC.md). The self-attention is causal over the tokens of one evaluation slot (one
// Euler step and stage): in decode it reads that slot's KV cache of earlier positions.
#include <algorithm>
#include <span>
#include <vector>

#include "flas/condition/concept_encoder.hpp"
#include "flas/condition/cross_attention.hpp"
#include "flas/condition/pooled_concept.hpp"
#include "flas/condition/time_embedding.hpp"
#include "flas/field/flow_weights.hpp"
#include "flas/models/gemma2/attention.hpp"
#include "flas/models/gemma2/config.hpp"

namespace flas::field {

template <Backend B>
class FlasFlow {
 public:
  // Concept keys/values of every block's cross-attention, one concept per batch row.
  struct Conditioning {
    std::vector<condition::ConceptKV<B>> per_block;  // cross-attention
    std::vector<tensor_t<B>> pooled;                  // pooled-additive: N_post(W_p·mean(C)) [B, H] per block
  };
  // State of one evaluation slot (one Euler step and stage) across the tokens of a sequence: per block,
  // the self-attention K and V [B, capacity, nKV, hd]; and e(t) with the times it was computed for —
  // a slot sees the same t at every decode token, so its time MLP runs once per sequence, not per token.
  struct SlotCache {
    std::vector<tensor_t<B>> k, v;
    std::vector<float> embedded_times;
    tensor_t<B> time_embedding;
  };

  FlasFlow(const gemma2::Config& base, Tensor inv_freq, FlowWeights w)
      : cfg_(base), inv_freq_(std::move(inv_freq)), w_(std::move(w)) {}

  const FlowWeights& weights() const { return w_; }
  FlowWeights& weights() { return w_; }
  const gemma2::Config& base_config() const { return cfg_; }
  int blocks() const { return int(w_.blocks.size()); }
  // The dtype the flow's parameters are stored in: a bf16 flow rounds its step size and times to bf16,
  // as the reference does when it runs in bf16.
  DType parameter_dtype() const {
    DType d = DType::F32;
    for_each_flow_parameter(w_, [&](const std::string&, const Tensor& t) { d = t.dtype(); });
    return d;
  }

  Conditioning condition(const condition::EncodedConcepts<B>& per_row) const {
    Conditioning c;
    if (w_.switches.cross_attn)
      for (const auto& blk : w_.blocks)
        c.per_block.push_back(condition::concept_keys_values<B>(blk.cross, heads(), eps(), per_row, inv_freq_));
    if (w_.switches.pooled) {
      const auto mean = condition::masked_mean<B>(per_row);
      for (const auto& blk : w_.blocks) {
        auto p = gemma2::new_activation<B>(mean.shape());
        B::linear(mean, blk.concept_proj, nullptr, p);
        B::rms_norm(p, blk.post_cross_norm, eps(), p);
        c.pooled.push_back(p);
      }
    }
    return c;
  }

  SlotCache new_slot_cache(std::int64_t batch, std::int64_t capacity) const {
    SlotCache s;
    if (!w_.switches.self_attn) return s;
    const Shape kv{batch, capacity, cfg_.num_key_value_heads, cfg_.head_dim};
    for (int b = 0; b < blocks(); ++b) {
      s.k.push_back(tensor_t<B>::empty(kv, B::activation_dtype));
      s.v.push_back(tensor_t<B>::empty(kv, B::activation_dtype));
    }
    return s;
  }

  // v for the new tokens h [B, S, H] at times t (one per row); `at` locates them in the slot's cache.
  tensor_t<B> velocity(const tensor_t<B>& h, std::span<const float> t, const Conditioning& cond,
                       const gemma2::TokenLayout& at, SlotCache& cache) const {
    const std::int64_t Bn = h.dim(0), S = h.dim(1);
    FLAS_CHECK(std::int64_t(t.size()) == Bn, "flow velocity: ", t.size(), " times for ", Bn, " rows");
    auto x = tensor_t<B>::empty(h.shape(), B::activation_dtype);
    B::copy(x, h);
    const tensor_t<B>* e = w_.switches.time ? &embedded_time(t, cache) : nullptr;
    auto n = tensor_t<B>::empty(h.shape(), B::activation_dtype);
    for (std::size_t i = 0; i < w_.blocks.size(); ++i) {
      const FlowBlockWeights& blk = w_.blocks[i];
      if (w_.switches.time)
        for (std::int64_t b = 0; b < Bn; ++b)
          for (std::int64_t s = 0; s < S; ++s) {
            auto row = x[b][s];
            B::add(row, (*e)[b]);
          }
      if (w_.switches.cross_attn) {
        B::rms_norm(x, blk.pre_cross_norm, eps(), n);
        auto a = condition::cross_attention<B>(blk.cross, heads(), eps(), softcap(), n, at.positions,
                                               cond.per_block.at(i), inv_freq_);
        B::rms_norm(a, blk.post_cross_norm, eps(), a);
        B::add_gated(x, blk.cross_gate, a);
      }
      if (w_.switches.pooled)
        for (std::int64_t b = 0; b < Bn; ++b)
          for (std::int64_t s = 0; s < S; ++s) {
            auto row = x[b][s];
            B::add_gated(row, blk.cross_gate, cond.pooled.at(i)[b]);
          }
      if (w_.switches.self_attn) {
        B::rms_norm(x, blk.pre_sa_norm, eps(), n);
        auto a = gemma2::cached_self_attention<B>(blk.self_attn, heads(), self_attention_rule(), n, at, inv_freq_,
                                                  cache.k.at(i), cache.v.at(i));
        B::rms_norm(a, blk.post_sa_norm, eps(), a);
        B::add_gated(x, blk.self_attn_gate, a);
      }
      if (w_.switches.mlp) {
        B::rms_norm(x, blk.pre_mlp_norm, eps(), n);
        auto m = gemma2::gated_mlp<B>(blk.mlp, n);
        B::rms_norm(m, blk.post_mlp_norm, eps(), m);
        B::add_gated(x, blk.mlp_gate, m);
      }
    }
    B::axpy(x, -1.0f, h);  // v = x_B − h
    return x;
  }

 private:
  const tensor_t<B>& embedded_time(std::span<const float> t, SlotCache& cache) const {
    if (!cache.time_embedding.defined() || !std::ranges::equal(cache.embedded_times, t)) {
      cache.time_embedding = condition::time_embedding<B>(w_.time, t);
      cache.embedded_times.assign(t.begin(), t.end());
    }
    return cache.time_embedding;
  }

  gemma2::HeadLayout heads() const { return {cfg_.num_attention_heads, cfg_.num_key_value_heads, cfg_.head_dim}; }
  float eps() const { return float(cfg_.rms_norm_eps); }
  float softcap() const { return float(cfg_.attn_logit_softcapping); }
  // The flow's self-attention: Gemma-2 scaling and cap, −1e4 added per causal/padding violation, no window.
  nn::AttentionParams self_attention_rule() const {
    nn::AttentionParams p;
    p.scale = float(1.0 / std::sqrt(cfg_.query_pre_attn_scalar));
    p.softcap = softcap();
    p.rule = nn::MaskRule::flas_additive;
    p.window = 0;
    return p;
  }

  gemma2::Config cfg_;
  Tensor inv_freq_;
  FlowWeights w_;
};

}  // namespace flas::field
