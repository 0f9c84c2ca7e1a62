#pragma once
// The FLAS velocity v(h, t, c) over a whole right-padded training batch, optionally keeping what its VJP
// (flow_backward.hpp) needs. It runs FlasFlow::velocity's ops in the same order on the same inputs (the
// batch is its own self-attention cache), so it gives the same numbers bit for bit (a test checks this);
// one forward serves evaluation and recording, so a recomputed step equals the recorded one exactly.
//
// Per block:  x0 = x + e(t);  x1 = x0 + g_c ⊙ N(CrossAttn(N(x0), C));  x2 = x1 + g_s ⊙ N(SelfAttn(N(x1)));
//             x3 = x2 + g_m ⊙ N(MLP(N(x2)));   v = x_B − h.
// Kept per block: the residual stream entering each phase (x0, x1, x2), q/k/v and attention outputs,
// projections before their post-norms, MLP pre-activations. Normed inputs and post-norm outputs are
// recomputed in the backward pass (one RMSNorm each).
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <vector>

#include "flas/condition/time_embedding.hpp"
#include "flas/core/shared_input_linear.hpp"
#include "flas/field/flas_flow.hpp"
#include "flas/train/activations.hpp"
#include "flas/train/batch_layout.hpp"
#include "flas/train/flow_conditioning.hpp"

namespace flas::train {

template <Backend B>
struct FlowBlockTape {
  tensor_t<B> x_cross, x_self, x_mlp;                      // residual stream entering each phase
  tensor_t<B> cross_q_proj, cross_q, cross_attn, cross_o;  // q before q_norm; q after norm + RoPE; attention; o_proj
  tensor_t<B> self_q, self_k, self_v, self_attn, self_o;   // q, k after RoPE
  tensor_t<B> gate, up, down;                              // MLP pre-activations and down_proj output

  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto* t : {&x_cross, &x_self, &x_mlp, &cross_q_proj, &cross_q, &cross_attn, &cross_o, &self_q, &self_k,
                          &self_v, &self_attn, &self_o, &gate, &up, &down})
      n += t->bytes();
    return n;
  }
};

template <Backend B>
struct FlowTape {
  std::vector<float> t;                          // the row times of this evaluation
  tensor_t<B> time_features, time_pre, time_act; // τ(t); W1·τ + b1; SiLU of it
  std::vector<FlowBlockTape<B>> blocks;

  std::size_t bytes() const {
    std::size_t n = time_features.bytes() + time_pre.bytes() + time_act.bytes();
    for (const auto& b : blocks) n += b.bytes();
    return n;
  }
};

// The attention rules of FlasFlow (flas_flow.hpp, cross_attention.hpp), over a whole batch.
inline nn::AttentionParams flow_cross_attention_rule(const gemma2::Config& c, const Tensor& concept_mask) {
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(double(c.head_dim)));
  p.softcap = float(c.attn_logit_softcapping);
  p.rule = nn::MaskRule::replace_neg1e4;
  p.causal = false;
  p.key_valid = concept_mask.data<std::uint8_t>();
  return p;
}
inline nn::AttentionParams flow_self_attention_rule(const gemma2::Config& c, const BatchLayout& at) {
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(c.query_pre_attn_scalar));
  p.softcap = float(c.attn_logit_softcapping);
  p.rule = nn::MaskRule::flas_additive;
  p.causal = true;
  p.window = 0;
  p.kv_len = at.seq;
  p.key_valid = at.valid();
  return p;
}

// v(h, t, c) for h [B, S, H] and one t per row; fills `tape` when given.
template <Backend B>
tensor_t<B> flow_velocity(const field::FlasFlow<B>& flow, const ConditioningTape<B>& cond, const tensor_t<B>& h,
                          std::span<const float> t, const BatchLayout& at, const Tensor& inv_freq,
                          FlowTape<B>* tape = nullptr) {
  const auto& c = flow.base_config();
  const auto& w = flow.weights();
  const float eps = float(c.rms_norm_eps);
  const std::int64_t Bn = h.dim(0), S = h.dim(1), H = h.dim(2), hd = c.head_dim;
  const std::int64_t nH = c.num_attention_heads, nKV = c.num_key_value_heads, I = c.intermediate_size;
  FLAS_CHECK(std::int64_t(t.size()) == Bn && Bn == at.batch && S == at.seq, "flow velocity: state ", h.shape(), ", ",
             t.size(), " times and a batch of [", at.batch, ", ", at.seq, "] do not fit");
  const bool keep = tape != nullptr;
  if (keep) {
    *tape = {};
    tape->t.assign(t.begin(), t.end());
    tape->blocks.resize(w.blocks.size());
  }

  auto x = copy_of<B>(h);
  tensor_t<B> e;
  if (w.switches.time) {  // condition::time_embedding, keeping its intermediates
    const Tensor features = condition::sinusoidal_time_features(t);
    auto tau = activation<B>(features.shape());
    if (B::activation_dtype == DType::F32) B::copy(tau, features);
    else B::copy(tau, convert(features, B::activation_dtype));
    auto hidden = activation<B>({Bn, w.time.w1.dim(0)});
    B::linear(tau, w.time.w1, &w.time.b1, hidden);
    if (keep) tape->time_features = tau, tape->time_pre = copy_of<B>(hidden);
    nn::silu<B>(hidden);
    e = activation<B>({Bn, H});
    B::linear(hidden, w.time.w2, &w.time.b2, e);
    if (keep) tape->time_act = hidden;
  }
  auto n = activation<B>(h.shape()), post = activation<B>(h.shape());
  for (std::size_t i = 0; i < w.blocks.size(); ++i) {
    const field::FlowBlockWeights& blk = w.blocks[i];
    FlowBlockTape<B>* bt = keep ? &tape->blocks[i] : nullptr;
    if (w.switches.time)
      for (std::int64_t b = 0; b < Bn; ++b)
        for (std::int64_t s = 0; s < S; ++s) {
          auto row = x[b][s];
          B::add(row, e[b]);
        }
    if (w.switches.cross_attn) {
      if (keep) bt->x_cross = copy_of<B>(x);
      B::rms_norm(x, blk.pre_cross_norm, eps, n);
      auto q_proj = activation<B>({Bn, S, nH, hd}), q = activation<B>({Bn, S, nH, hd});
      B::linear(n, blk.cross.q_proj, nullptr, q_proj);
      B::rms_norm(q_proj, blk.cross.q_norm, eps, q);
      B::rope(q, at.positions, inv_freq);
      const auto& kv = cond.cond.per_block.at(i);
      auto attn = activation<B>({Bn, S, nH, hd});
      B::attention(q, kv.k, kv.v, attn, flow_cross_attention_rule(c, kv.mask));
      auto o = activation<B>({Bn, S, H});
      B::linear(attn.view({Bn, S, nH * hd}), blk.cross.o_proj, nullptr, o);
      B::rms_norm(o, blk.post_cross_norm, eps, post);
      B::add_gated(x, blk.cross_gate, post);
      if (keep) bt->cross_q_proj = q_proj, bt->cross_q = q, bt->cross_attn = attn, bt->cross_o = o;
    }
    if (w.switches.pooled)
      for (std::int64_t b = 0; b < Bn; ++b)
        for (std::int64_t s = 0; s < S; ++s) {
          auto row = x[b][s];
          B::add_gated(row, blk.cross_gate, cond.cond.pooled.at(i)[b]);
        }
    if (w.switches.self_attn) {
      if (keep) bt->x_self = copy_of<B>(x);
      B::rms_norm(x, blk.pre_sa_norm, eps, n);
      auto q = activation<B>({Bn, S, nH, hd}), k = activation<B>({Bn, S, nKV, hd}), v = activation<B>({Bn, S, nKV, hd});
      linear_shared_input<B>(n, {{&blk.self_attn.q_proj, &q}, {&blk.self_attn.k_proj, &k}, {&blk.self_attn.v_proj, &v}});
      B::rope(q, at.positions, inv_freq);
      B::rope(k, at.positions, inv_freq);
      auto attn = activation<B>({Bn, S, nH, hd});
      B::attention(q, k, v, attn, flow_self_attention_rule(c, at));
      auto o = activation<B>({Bn, S, H});
      B::linear(attn.view({Bn, S, nH * hd}), blk.self_attn.o_proj, nullptr, o);
      B::rms_norm(o, blk.post_sa_norm, eps, post);
      B::add_gated(x, blk.self_attn_gate, post);
      if (keep) bt->self_q = q, bt->self_k = k, bt->self_v = v, bt->self_attn = attn, bt->self_o = o;
    }
    if (w.switches.mlp) {
      if (keep) bt->x_mlp = copy_of<B>(x);
      B::rms_norm(x, blk.pre_mlp_norm, eps, n);
      auto gate = activation<B>({Bn, S, I}), up = activation<B>({Bn, S, I}), act = activation<B>({Bn, S, I});
      linear_shared_input<B>(n, {{&blk.mlp.gate_proj, &gate}, {&blk.mlp.up_proj, &up}});
      B::gelu_tanh_mul(gate, up, act);
      auto down = activation<B>({Bn, S, H});
      B::linear(act, blk.mlp.down_proj, nullptr, down);
      B::rms_norm(down, blk.post_mlp_norm, eps, post);
      B::add_gated(x, blk.mlp_gate, post);
      if (keep) bt->gate = gate, bt->up = up, bt->down = down;
    }
  }
  B::axpy(x, -1.0f, h);  // v = x_B − h
  return x;
}

}  // namespace flas::train
