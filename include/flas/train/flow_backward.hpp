#pragma once
// The VJP of one FLAS velocity evaluation (flow_tape.hpp's flow_velocity): given ∂L/∂v, it writes ∂L/∂h,
// adds ∂L/∂θ into `grads` for every flow parameter used directly by the evaluation, and adds the
// cotangents of the concept-side conditioning (K, V or the pooled vector of every block) into `cond_cot`
// (their parameters get their gradient once per batch, in conditioning_backward).
//
// Walking the blocks backwards with dx = ∂L/∂x (x_B = h + v, so dx starts as ∂L/∂v):
//   x' = x + g ⊙ N_post(y):  dg += Σ dx ⊙ N_post(y);  dy = N_post'ᵀ(g ⊙ dx);  dx passes through unchanged
//   the branch input N_pre(x) adds N_pre'ᵀ(d normed) into dx
//   x0 = x + e(t):           de[row] += Σ_positions dx
// and finally ∂L/∂h = dx − ∂L/∂v, the time MLP's gradients from de.
#include "flas/core/backward.hpp"
#include "flas/train/flow_tape.hpp"

namespace flas::train {

namespace detail {

// For x' = x + g ⊙ N_post(y): accumulates dg and N_post's weight gradient; returns ∂L/∂y.
template <TrainableBackend B>
tensor_t<B> gated_post_norm_backward(const tensor_t<B>& y, const Tensor& post_norm, const Tensor& gate, float eps,
                                     const tensor_t<B>& dx, Tensor& d_post_norm, Tensor& d_gate) {
  using Ops = BackwardOps<B>;
  auto normed = activation<B>(y.shape());
  B::rms_norm(y, post_norm, eps, normed);
  auto dy = activation<B>(y.shape());
  Ops::add_gated_backward(gate, normed, dx, dy, &d_gate);
  Ops::rms_norm_backward(y, post_norm, eps, dy, dy, &d_post_norm);
  return dy;
}

// The branch input n = N_pre(x) has cotangent dn (consumed): adds N_pre'ᵀ dn into dx, dN_pre into d_pre_norm.
template <TrainableBackend B>
void pre_norm_backward(const tensor_t<B>& x, const Tensor& pre_norm, float eps, tensor_t<B>& dn, tensor_t<B>& dx,
                       Tensor& d_pre_norm) {
  BackwardOps<B>::rms_norm_backward(x, pre_norm, eps, dn, dn, &d_pre_norm);
  B::add(dx, dn);
}

}  // namespace detail

template <TrainableBackend B>
void flow_velocity_backward(const field::FlasFlow<B>& flow, const ConditioningTape<B>& cond, const FlowTape<B>& tape,
                            const BatchLayout& at, const Tensor& inv_freq, const tensor_t<B>& cot_v, tensor_t<B>& cot_h,
                            field::FlowWeights& grads, ConditioningCotangents<B>& cond_cot) {
  using Ops = BackwardOps<B>;
  const auto& c = flow.base_config();
  const auto& w = flow.weights();
  const float eps = float(c.rms_norm_eps);
  const std::int64_t Bn = cot_v.dim(0), S = cot_v.dim(1), H = cot_v.dim(2), hd = c.head_dim;
  const std::int64_t nH = c.num_attention_heads, I = c.intermediate_size;
  auto dx = copy_of<B>(cot_v);
  auto dn = activation<B>(cot_v.shape()), tmp = activation<B>(cot_v.shape()), n = activation<B>(cot_v.shape());
  tensor_t<B> de = w.switches.time ? zero_activation<B>({Bn, H}) : tensor_t<B>{};

  for (std::size_t i = w.blocks.size(); i-- > 0;) {
    const field::FlowBlockWeights& blk = w.blocks[i];
    field::FlowBlockWeights& g = grads.blocks[i];
    const FlowBlockTape<B>& bt = tape.blocks[i];
    if (w.switches.mlp) {
      auto dd = detail::gated_post_norm_backward<B>(bt.down, blk.post_mlp_norm, blk.mlp_gate, eps, dx,
                                                    g.post_mlp_norm, g.mlp_gate);
      auto act = activation<B>({Bn, S, I});
      B::gelu_tanh_mul(bt.gate, bt.up, act);
      auto d_act = activation<B>({Bn, S, I});
      Ops::linear_backward(act, blk.mlp.down_proj, dd, &d_act, &g.mlp.down_proj, nullptr);
      auto d_gate = activation<B>({Bn, S, I}), d_up = activation<B>({Bn, S, I});
      Ops::gelu_tanh_mul_backward(bt.gate, bt.up, d_act, d_gate, d_up);
      B::rms_norm(bt.x_mlp, blk.pre_mlp_norm, eps, n);
      Ops::linear_backward(n, blk.mlp.gate_proj, d_gate, &dn, &g.mlp.gate_proj, nullptr);
      Ops::linear_backward(n, blk.mlp.up_proj, d_up, &tmp, &g.mlp.up_proj, nullptr);
      B::add(dn, tmp);
      detail::pre_norm_backward<B>(bt.x_mlp, blk.pre_mlp_norm, eps, dn, dx, g.pre_mlp_norm);
    }
    if (w.switches.self_attn) {
      auto d_o = detail::gated_post_norm_backward<B>(bt.self_o, blk.post_sa_norm, blk.self_attn_gate, eps, dx,
                                                     g.post_sa_norm, g.self_attn_gate);
      auto d_attn = activation<B>(bt.self_attn.shape());
      Ops::linear_backward(bt.self_attn.view({Bn, S, nH * hd}), blk.self_attn.o_proj, d_o, &d_attn,
                           &g.self_attn.o_proj, nullptr);
      auto dq = activation<B>(bt.self_q.shape());
      auto dk = zero_activation<B>(bt.self_k.shape()), dv = zero_activation<B>(bt.self_v.shape());
      Ops::attention_backward(bt.self_q, bt.self_k, bt.self_v, bt.self_attn, d_attn, flow_self_attention_rule(c, at), dq,
                              dk, dv);
      Ops::rope_backward(dq, at.positions, inv_freq);
      Ops::rope_backward(dk, at.positions, inv_freq);
      B::rms_norm(bt.x_self, blk.pre_sa_norm, eps, n);
      Ops::linear_backward(n, blk.self_attn.q_proj, dq, &dn, &g.self_attn.q_proj, nullptr);
      Ops::linear_backward(n, blk.self_attn.k_proj, dk, &tmp, &g.self_attn.k_proj, nullptr);
      B::add(dn, tmp);
      Ops::linear_backward(n, blk.self_attn.v_proj, dv, &tmp, &g.self_attn.v_proj, nullptr);
      B::add(dn, tmp);
      detail::pre_norm_backward<B>(bt.x_self, blk.pre_sa_norm, eps, dn, dx, g.pre_sa_norm);
    }
    if (w.switches.pooled) {  // x1 = x0 + g_c ⊙ P[row], P broadcast over positions
      const auto& P = cond.cond.pooled.at(i);
      auto dp_row = activation<B>({H});
      for (std::int64_t b = 0; b < Bn; ++b) {
        auto dp = cond_cot.dpooled[i][b];
        for (std::int64_t s = 0; s < S; ++s) {
          Ops::add_gated_backward(blk.cross_gate, P[b], dx[b][s], dp_row, &g.cross_gate);
          B::add(dp, dp_row);
        }
      }
    }
    if (w.switches.cross_attn) {
      auto d_o = detail::gated_post_norm_backward<B>(bt.cross_o, blk.post_cross_norm, blk.cross_gate, eps, dx,
                                                     g.post_cross_norm, g.cross_gate);
      auto d_attn = activation<B>(bt.cross_attn.shape());
      Ops::linear_backward(bt.cross_attn.view({Bn, S, nH * hd}), blk.cross.o_proj, d_o, &d_attn, &g.cross.o_proj,
                           nullptr);
      const auto& kv = cond.cond.per_block.at(i);
      auto dq = activation<B>(bt.cross_q.shape());
      Ops::attention_backward(bt.cross_q, kv.k, kv.v, bt.cross_attn, d_attn, flow_cross_attention_rule(c, kv.mask), dq,
                              cond_cot.dk[i], cond_cot.dv[i]);
      Ops::rope_backward(dq, at.positions, inv_freq);
      Ops::rms_norm_backward(bt.cross_q_proj, blk.cross.q_norm, eps, dq, dq, &g.cross.q_norm);
      B::rms_norm(bt.x_cross, blk.pre_cross_norm, eps, n);
      Ops::linear_backward(n, blk.cross.q_proj, dq, &dn, &g.cross.q_proj, nullptr);
      detail::pre_norm_backward<B>(bt.x_cross, blk.pre_cross_norm, eps, dn, dx, g.pre_cross_norm);
    }
    if (w.switches.time)
      for (std::int64_t b = 0; b < Bn; ++b) {
        auto de_row = de[b];
        for (std::int64_t s = 0; s < S; ++s) B::add(de_row, dx[b][s]);
      }
  }

  if (w.switches.time) {  // e = W2·SiLU(W1·τ + b1) + b2; τ does not depend on a parameter
    auto d_hidden = activation<B>(tape.time_act.shape()), d_pre = activation<B>(tape.time_act.shape());
    Ops::linear_backward(tape.time_act, w.time.w2, de, &d_hidden, &grads.time.w2, &grads.time.b2);
    Ops::silu_backward(tape.time_pre, d_hidden, d_pre);
    Ops::linear_backward(tape.time_features, w.time.w1, d_pre, nullptr, &grads.time.w1, &grads.time.b1);
  }
  B::copy(cot_h, dx);
  B::axpy(cot_h, -1.0f, cot_v);  // v = x_B − h
}

}  // namespace flas::train
