#pragma once
// One frozen Gemma-2 decoder layer for training: a forward that keeps what the VJP needs, and the VJP
// with respect to the layer's input only. Base weights are frozen, so no weight gradient is computed
// and none is stored. The forward runs decoder_layer_forward's ops in the same order on the same
// inputs (the batch is its own KV cache), so it computes the same numbers as inference.
//
//   h_mid = h_in + N_post_attn(o(Attn(rope(q(N_in h_in)), rope(k(N_in h_in)), v(N_in h_in))))
//   h_out = h_mid + N_post_ff(down(gelu_tanh(gate(N_pre_ff h_mid)) ⊙ up(N_pre_ff h_mid)))
//
// Kept: h_in, h_mid, q/k/v after RoPE, the attention output, the o and down projections before their
// post-norms, and the MLP pre-activations. The normed inputs are recomputed (one RMSNorm each).
#include <cstddef>
#include <initializer_list>

#include "flas/core/backward.hpp"
#include "flas/core/shared_input_linear.hpp"
#include "flas/models/gemma2/decoder_layer.hpp"
#include "flas/train/activations.hpp"
#include "flas/train/batch_layout.hpp"

namespace flas::train {

template <Backend B>
struct DecoderLayerTape {
  tensor_t<B> h_in, h_mid;
  tensor_t<B> q, k, v, attn;  // [B, S, heads, hd]; q and k after RoPE
  tensor_t<B> attn_proj;      // o_proj output, before post_attention_layernorm
  tensor_t<B> gate, up;       // MLP pre-activations [B, S, I]
  tensor_t<B> mlp_proj;       // down_proj output, before post_feedforward_layernorm

  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto* t : {&h_in, &h_mid, &q, &k, &v, &attn, &attn_proj, &gate, &up, &mlp_proj}) n += t->bytes();
    return n;
  }
};

// The self-attention mask of a base layer over a whole right-padded batch.
inline nn::AttentionParams base_layer_mask(const gemma2::Config& c, int layer, const BatchLayout& at) {
  nn::AttentionParams p = gemma2::base_attention_rule(c, c.is_sliding(layer) ? c.sliding_window : 0);
  p.causal = true;
  p.kv_len = at.seq;
  p.key_valid = at.valid();
  return p;
}

// h [B, S, H] is updated in place to the layer's output; the tape is filled.
template <Backend B>
void decoder_layer_forward_recorded(const gemma2::Config& c, int layer, const gemma2::LayerWeights& w,
                                    tensor_t<B>& h, const BatchLayout& at, const Tensor& inv_freq,
                                    DecoderLayerTape<B>& tape) {
  const float eps = float(c.rms_norm_eps);
  const std::int64_t Bn = h.dim(0), S = h.dim(1), H = h.dim(2), hd = c.head_dim;
  const std::int64_t nH = c.num_attention_heads, nKV = c.num_key_value_heads, I = c.intermediate_size;
  tape.h_in = copy_of<B>(h);
  auto normed = activation<B>(h.shape());
  B::rms_norm(h, w.input_norm, eps, normed);
  tape.q = activation<B>({Bn, S, nH, hd});
  tape.k = activation<B>({Bn, S, nKV, hd});
  tape.v = activation<B>({Bn, S, nKV, hd});
  linear_shared_input<B>(normed, {{&w.attn.q_proj, &tape.q}, {&w.attn.k_proj, &tape.k}, {&w.attn.v_proj, &tape.v}});
  B::rope(tape.q, at.positions, inv_freq);
  B::rope(tape.k, at.positions, inv_freq);
  tape.attn = activation<B>({Bn, S, nH, hd});
  B::attention(tape.q, tape.k, tape.v, tape.attn, base_layer_mask(c, layer, at));
  tape.attn_proj = activation<B>({Bn, S, H});
  B::linear(tape.attn.view({Bn, S, nH * hd}), w.attn.o_proj, nullptr, tape.attn_proj);
  B::rms_norm(tape.attn_proj, w.post_attn_norm, eps, normed);
  B::add(h, normed);

  tape.h_mid = copy_of<B>(h);
  B::rms_norm(h, w.pre_ff_norm, eps, normed);
  tape.gate = activation<B>({Bn, S, I});
  tape.up = activation<B>({Bn, S, I});
  linear_shared_input<B>(normed, {{&w.mlp.gate_proj, &tape.gate}, {&w.mlp.up_proj, &tape.up}});
  auto act = activation<B>({Bn, S, I});
  B::gelu_tanh_mul(tape.gate, tape.up, act);
  tape.mlp_proj = activation<B>({Bn, S, H});
  B::linear(act, w.mlp.down_proj, nullptr, tape.mlp_proj);
  B::rms_norm(tape.mlp_proj, w.post_ff_norm, eps, normed);
  B::add(h, normed);
}

// dh: in, ∂L/∂(layer output); out, ∂L/∂(layer input). No weight gradients.
// linear_backward reads its x only to size dx when no weight gradient is asked for, so the frozen
// projections are handed a kept tensor of the input's shape instead of a recomputed normed input.
template <TrainableBackend B>
void decoder_layer_backward(const gemma2::Config& c, int layer, const gemma2::LayerWeights& w,
                            const DecoderLayerTape<B>& tape, const BatchLayout& at, const Tensor& inv_freq,
                            tensor_t<B>& dh) {
  using Ops = BackwardOps<B>;
  const float eps = float(c.rms_norm_eps);
  const std::int64_t Bn = dh.dim(0), S = dh.dim(1), hd = c.head_dim;
  const std::int64_t nH = c.num_attention_heads, I = c.intermediate_size;
  auto d_in = activation<B>(dh.shape()), tmp = activation<B>(dh.shape());

  // MLP branch: h_out = h_mid + N_post_ff(mlp_proj).
  Ops::rms_norm_backward(tape.mlp_proj, w.post_ff_norm, eps, dh, tmp, nullptr);
  auto d_act = activation<B>({Bn, S, I});
  Ops::linear_backward(tape.gate, w.mlp.down_proj, tmp, &d_act, nullptr, nullptr);
  auto d_gate = activation<B>({Bn, S, I}), d_up = activation<B>({Bn, S, I});
  Ops::gelu_tanh_mul_backward(tape.gate, tape.up, d_act, d_gate, d_up);
  Ops::linear_backward(tape.h_mid, w.mlp.gate_proj, d_gate, &d_in, nullptr, nullptr);
  Ops::linear_backward(tape.h_mid, w.mlp.up_proj, d_up, &tmp, nullptr, nullptr);
  B::add(d_in, tmp);
  Ops::rms_norm_backward(tape.h_mid, w.pre_ff_norm, eps, d_in, tmp, nullptr);
  B::add(dh, tmp);  // dh is now ∂L/∂h_mid

  // Attention branch: h_mid = h_in + N_post_attn(attn_proj).
  Ops::rms_norm_backward(tape.attn_proj, w.post_attn_norm, eps, dh, tmp, nullptr);
  auto d_attn = activation<B>({Bn, S, nH, hd});
  Ops::linear_backward(tape.attn.view({Bn, S, nH * hd}), w.attn.o_proj, tmp, &d_attn, nullptr, nullptr);
  auto dq = activation<B>(tape.q.shape());
  auto dk = zero_activation<B>(tape.k.shape()), dv = zero_activation<B>(tape.v.shape());
  Ops::attention_backward(tape.q, tape.k, tape.v, tape.attn, d_attn, base_layer_mask(c, layer, at), dq, dk, dv);
  Ops::rope_backward(dq, at.positions, inv_freq);
  Ops::rope_backward(dk, at.positions, inv_freq);
  Ops::linear_backward(tape.h_in, w.attn.q_proj, dq, &d_in, nullptr, nullptr);
  Ops::linear_backward(tape.h_in, w.attn.k_proj, dk, &tmp, nullptr, nullptr);
  B::add(d_in, tmp);
  Ops::linear_backward(tape.h_in, w.attn.v_proj, dv, &tmp, nullptr, nullptr);
  B::add(d_in, tmp);
  Ops::rms_norm_backward(tape.h_in, w.input_norm, eps, d_in, tmp, nullptr);
  B::add(dh, tmp);
}

}  // namespace flas::train
