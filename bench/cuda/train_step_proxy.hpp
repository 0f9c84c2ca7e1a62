#pragma once
// The cost of one FLAS training step on CudaBackend, for timing only. flas has no trainer yet, so this
// runs the op sequence a trainer will run, with the real shapes, through the real forward and backward
// ops: base layers 0..L forward; N Euler steps of a 1-block flow (cross-attention to a concept, causal
// self-attention, gated MLP) with every activation kept; the upper layers L+1.. forward; final norm, the
// tied LM head and the fused soft-capped cross-entropy; then the backward through the head, the upper
// layers (cotangents only: frozen) and the Euler steps (cotangents and flow parameter gradients).
// Left out as negligible (< 1% of the FLOPs): the time MLP, the q/k norms of the cross-attention, the
// gates' element-wise products and the diversity loss. The numbers it computes are not a gradient
// anyone checks — the timings are what it is for.
#include <chrono>
#include <cmath>
#include <map>
#include <vector>

#include "flas/backends/cuda.hpp"
#include "flas/backends/cuda_backward.hpp"
#include "flas/models/gemma2/model.hpp"

namespace flas::bench_cuda {

using B = CudaBackend;
using Ops = BackwardOps<CudaBackend>;

inline CudaTensor act(const Shape& s) { return CudaTensor::empty(s, DType::F32); }
inline CudaTensor zeros_dev(const Shape& s) {
  CudaTensor t = act(s);
  B::fill(t, 0.0f);
  return t;
}
inline CudaTensor copy_of(const CudaTensor& x) {
  CudaTensor t = act(x.shape());
  B::copy(t, x);
  return t;
}

// One pre/post-norm residual block: attention (self or cross) then a gated MLP, keeping what the
// backward needs. Weights are host tensors (the weight cache uploads them once).
struct BlockWeights {
  const Tensor *in_norm, *q, *k, *v, *o, *post_attn, *pre_ff, *gate, *up, *down, *post_ff;
};

struct BlockSaved {
  CudaTensor x, n1, q, k, v, a, o, x1, n2, g, u, m, d;
  nn::AttentionParams p;
  bool mlp = true;
};

class BlockRunner {
 public:
  BlockRunner(const gemma2::Config& c, const Tensor& inv_freq, const Tensor& positions)
      : c_(c), inv_freq_(inv_freq), pos_(positions) {}

  // h [Bn, S, H] updated in place. With concept keys/values: cross-attention to them (no k/v
  // projections, not causal) and no MLP — the FLAS block's cross-attention phase.
  BlockSaved forward(const BlockWeights& w, CudaTensor& h, std::int64_t window, const CudaTensor* concept_k = nullptr,
                     const CudaTensor* concept_v = nullptr) const {
    const std::int64_t Bn = h.dim(0), S = h.dim(1), H = h.dim(2), hd = c_.head_dim;
    const float eps = float(c_.rms_norm_eps);
    BlockSaved s;
    s.x = copy_of(h);
    s.n1 = act(h.shape());
    B::rms_norm(h, *w.in_norm, eps, s.n1);
    s.q = act({Bn, S, c_.num_attention_heads, hd});
    B::linear(s.n1, *w.q, nullptr, s.q);
    B::rope(s.q, pos_, inv_freq_);
    s.p.scale = float(1.0 / std::sqrt(c_.query_pre_attn_scalar));
    s.p.softcap = float(c_.attn_logit_softcapping);
    if (concept_k) {
      s.k = *concept_k;
      s.v = *concept_v;
      s.p.causal = false;
      s.p.rule = nn::MaskRule::replace_neg1e4;
    } else {
      s.k = act({Bn, S, c_.num_key_value_heads, hd});
      s.v = act({Bn, S, c_.num_key_value_heads, hd});
      B::linear(s.n1, *w.k, nullptr, s.k);
      B::linear(s.n1, *w.v, nullptr, s.v);
      B::rope(s.k, pos_, inv_freq_);
      s.p.window = window;
    }
    s.a = act(s.q.shape());
    B::attention(s.q, s.k, s.v, s.a, s.p);
    s.o = act(h.shape());
    B::linear(s.a.view({Bn, S, c_.num_attention_heads * hd}), *w.o, nullptr, s.o);
    B::rms_norm_residual(h, s.o, *w.post_attn, eps, nullptr);
    s.mlp = concept_k == nullptr;
    if (!s.mlp) return s;
    s.x1 = copy_of(h);
    s.n2 = act(h.shape());
    B::rms_norm(h, *w.pre_ff, eps, s.n2);
    s.g = act({Bn, S, c_.intermediate_size});
    s.u = act(s.g.shape());
    B::linear(s.n2, *w.gate, nullptr, s.g);
    B::linear(s.n2, *w.up, nullptr, s.u);
    s.m = act(s.g.shape());
    B::gelu_tanh_mul(s.g, s.u, s.m);
    s.d = act({Bn, S, H});
    B::linear(s.m, *w.down, nullptr, s.d);
    B::rms_norm_residual(h, s.d, *w.post_ff, eps, nullptr);
    return s;
  }

  // dh: the cotangent of the block's output on entry, of its input on return. With `grads`, the
  // parameter gradients are accumulated there (keyed by weight).
  void backward(const BlockWeights& w, const BlockSaved& s, CudaTensor& dh,
                std::map<const Tensor*, CudaTensor>* grads) const {
    const float eps = float(c_.rms_norm_eps);
    auto grad = [&](const Tensor* p) -> CudaTensor* {
      if (!grads) return nullptr;
      auto it = grads->find(p);
      if (it == grads->end()) it = grads->emplace(p, zeros_dev(p->shape())).first;
      return &it->second;
    };
    if (s.mlp) mlp_backward(w, s, dh, grad);
    // Attention branch: x1 = x + N_post_attn(o(attn(q, k, v))).
    CudaTensor dO = act(s.o.shape());
    Ops::rms_norm_backward(s.o, *w.post_attn, eps, dh, dO, grad(w.post_attn));
    CudaTensor da = act(s.a.shape());
    const Shape flat{s.a.dim(0), s.a.dim(1), s.a.dim(2) * s.a.dim(3)};
    Ops::linear_backward(s.a.view(flat), *w.o, dO, &da, grad(w.o), nullptr);
    CudaTensor dq = act(s.q.shape()), dk = zeros_dev(s.k.shape()), dv = zeros_dev(s.v.shape());
    Ops::attention_backward(s.q, s.k, s.v, s.a, da, s.p, dq, dk, dv);
    Ops::rope_backward(dq, pos_, inv_freq_);
    CudaTensor dn1 = act(s.n1.shape());
    Ops::linear_backward(s.n1, *w.q, dq, &dn1, grad(w.q), nullptr);
    if (s.p.causal) {  // self-attention: k and v came from n1 (cross-attention's are the concept's)
      Ops::rope_backward(dk, pos_, inv_freq_);
      CudaTensor extra = act(s.n1.shape());
      Ops::linear_backward(s.n1, *w.k, dk, &extra, grad(w.k), nullptr);
      B::add(dn1, extra);
      Ops::linear_backward(s.n1, *w.v, dv, &extra, grad(w.v), nullptr);
      B::add(dn1, extra);
    }
    CudaTensor dx = act(s.x.shape());
    Ops::rms_norm_backward(s.x, *w.in_norm, eps, dn1, dx, grad(w.in_norm));
    B::add(dh, dx);
  }

 private:
  // h = x1 + N_post_ff(down(gelu(gate·n2) ⊙ up·n2)), n2 = N_pre_ff(x1): dh becomes the cotangent of x1.
  template <class Grad>
  void mlp_backward(const BlockWeights& w, const BlockSaved& s, CudaTensor& dh, Grad& grad) const {
    const float eps = float(c_.rms_norm_eps);
    CudaTensor dd = act(s.d.shape());
    Ops::rms_norm_backward(s.d, *w.post_ff, eps, dh, dd, grad(w.post_ff));
    CudaTensor dm = act(s.m.shape());
    Ops::linear_backward(s.m, *w.down, dd, &dm, grad(w.down), nullptr);
    CudaTensor dg = act(s.g.shape()), du = act(s.u.shape());
    Ops::gelu_tanh_mul_backward(s.g, s.u, dm, dg, du);
    CudaTensor dn2 = act(s.n2.shape()), part = act(s.n2.shape());
    Ops::linear_backward(s.n2, *w.gate, dg, &dn2, grad(w.gate), nullptr);
    Ops::linear_backward(s.n2, *w.up, du, &part, grad(w.up), nullptr);
    B::add(dn2, part);
    Ops::rms_norm_backward(s.x1, *w.pre_ff, eps, dn2, part, grad(w.pre_ff));
    B::add(dh, part);
  }

  const gemma2::Config& c_;
  const Tensor& inv_freq_;
  const Tensor& pos_;
};

inline BlockWeights base_block(const gemma2::LayerWeights& L) {
  return {&L.input_norm, &L.attn.q_proj, &L.attn.k_proj, &L.attn.v_proj, &L.attn.o_proj, &L.post_attn_norm,
          &L.pre_ff_norm, &L.mlp.gate_proj, &L.mlp.up_proj, &L.mlp.down_proj, &L.post_ff_norm};
}

struct TrainStepTimes {
  double base_lower_ms = 0, flow_forward_ms = 0, upper_forward_ms = 0, head_ms = 0, upper_backward_ms = 0,
         flow_backward_ms = 0;
  double total_ms() const {
    return base_lower_ms + flow_forward_ms + upper_forward_ms + head_ms + upper_backward_ms + flow_backward_ms;
  }
};

// One step at batch Bn × S with the flow at layer L, N Euler steps of size T/N, concept length Lc.
// flow_cross: the block's cross-attention phase (its MLP fields unused); flow_self: its self-attention
// and MLP phases.
inline TrainStepTimes train_step(const gemma2::Config& c, const gemma2::Weights& base, const Tensor& inv_freq,
                                 const BlockWeights& flow_cross, const BlockWeights& flow_self, int L, int N, float T,
                                 std::int64_t Bn, std::int64_t S, std::int64_t Lc) {
  using clock = std::chrono::steady_clock;
  TrainStepTimes times;
  auto t = clock::now();
  auto lap = [&](double& into) {
    B::synchronize();
    const auto now = clock::now();
    into = std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
  };
  Tensor pos = Tensor::empty({Bn, S}, DType::I64), ids = Tensor::empty({Bn, S}, DType::I64);
  for (std::int64_t i = 0; i < Bn * S; ++i) {
    pos.data<std::int64_t>()[i] = i % S;
    ids.data<std::int64_t>()[i] = 3 + (i * 7919) % (c.vocab_size - 3);
  }
  const BlockRunner run(c, inv_freq, pos);
  const std::int64_t H = c.hidden_size;

  CudaTensor h = act({Bn, S, H});
  B::embedding(ids.view({Bn * S}), base.embed, round_to_bf16(std::sqrt(float(H))), h);
  for (int l = 0; l <= L; ++l) run.forward(base_block(base.layers[std::size_t(l)]), h, c.is_sliding(l) ? c.sliding_window : 0);
  lap(times.base_lower_ms);

  const CudaTensor ck = zeros_dev({Bn, Lc, c.num_key_value_heads, c.head_dim});
  const CudaTensor cv = zeros_dev(ck.shape());
  const float dt = round_to_bf16(T / float(N));
  std::vector<std::pair<BlockSaved, BlockSaved>> saved;
  for (int k = 0; k < N; ++k) {
    CudaTensor x = copy_of(h);
    BlockSaved cross = run.forward(flow_cross, x, 0, &ck, &cv);
    BlockSaved self = run.forward(flow_self, x, 0);
    B::axpy(x, -1.0f, h);  // v = x_B − h
    B::axpy(h, dt, x);
    saved.emplace_back(std::move(cross), std::move(self));
  }
  lap(times.flow_forward_ms);

  std::vector<BlockSaved> upper;
  for (int l = L + 1; l < c.num_hidden_layers; ++l)
    upper.push_back(run.forward(base_block(base.layers[std::size_t(l)]), h, c.is_sliding(l) ? c.sliding_window : 0));
  lap(times.upper_forward_ms);

  CudaTensor normed = act(h.shape());
  B::rms_norm(h, base.final_norm, float(c.rms_norm_eps), normed);
  CudaTensor logits = act({Bn * S, c.vocab_size});
  B::linear(normed.view({Bn * S, H}), base.embed, nullptr, logits);
  const Tensor labels = shift_labels(ids);
  (void)Ops::softcapped_cross_entropy(logits, float(c.final_logit_softcapping), labels.view({Bn * S}), &logits);
  CudaTensor dh = act({Bn, S, H});
  CudaTensor dnormed = act({Bn * S, H});
  Ops::linear_backward(normed.view({Bn * S, H}), base.embed, logits, &dnormed, nullptr, nullptr);
  logits = CudaTensor{};
  Ops::rms_norm_backward(h, base.final_norm, float(c.rms_norm_eps), dnormed.view(h.shape()), dh, nullptr);
  lap(times.head_ms);

  for (int l = c.num_hidden_layers - 1; l > L; --l)
    run.backward(base_block(base.layers[std::size_t(l)]), upper[std::size_t(l - L - 1)], dh, nullptr);
  upper.clear();
  lap(times.upper_backward_ms);

  std::map<const Tensor*, CudaTensor> grads;
  for (int k = N - 1; k >= 0; --k) {  // h_{k+1} = h_k + dt·(x_B(h_k) − h_k)
    CudaTensor g = copy_of(dh);
    B::scale(g, dt);
    run.backward(flow_self, saved[std::size_t(k)].second, g, &grads);
    run.backward(flow_cross, saved[std::size_t(k)].first, g, &grads);
    B::axpy(g, -dt, dh);
    B::add(dh, g);
  }
  lap(times.flow_backward_ms);
  return times;
}

}  // namespace flas::bench_cuda
