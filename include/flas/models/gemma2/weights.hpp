#pragma once
// Gemma-2 weights, named as in HF checkpoints, checked against the config on load: a missing tensor
// or a shape that does not match the config is an error naming the tensor and both shapes.
#include <string>
#include <vector>

#include "flas/core/tensor.hpp"
#include "flas/io/checkpoint.hpp"
#include "flas/models/gemma2/config.hpp"

namespace flas::gemma2 {

// Bias-free attention projections, [out, in] as HF stores them (the FLAS flow reuses this).
struct AttentionWeights {
  Tensor q_proj, k_proj, v_proj, o_proj;
};
// Gemma gated MLP: down(gelu_tanh(gate·x) ⊙ up·x).
struct MlpWeights {
  Tensor gate_proj, up_proj, down_proj;
};

struct LayerWeights {
  Tensor input_norm, post_attn_norm, pre_ff_norm, post_ff_norm;
  AttentionWeights attn;
  MlpWeights mlp;
};

struct Weights {
  Tensor embed;  // [V, H], also the tied LM head
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [H]
};

// Visits every weight tensor once: the embedding (the tied head too), the final norm, and each layer's
// four norms and seven projections. `W` is Weights or const Weights.
template <class W, class Visit>
void for_each_weight(W& w, Visit&& visit) {
  visit(w.embed);
  visit(w.final_norm);
  for (auto& L : w.layers)
    for (auto* t : {&L.input_norm, &L.post_attn_norm, &L.pre_ff_norm, &L.post_ff_norm, &L.attn.q_proj, &L.attn.k_proj,
                    &L.attn.v_proj, &L.attn.o_proj, &L.mlp.gate_proj, &L.mlp.up_proj, &L.mlp.down_proj})
      visit(*t);
}

// A copy with every weight converted to `dt` (e.g. the f32 variant of a bf16 model).
inline Weights weights_as(const Weights& w, DType dt) {
  Weights out = w;
  for_each_weight(out, [&](Tensor& t) { t = convert(t, dt); });
  return out;
}

namespace detail {
// A weight of floating dtype; F16 is widened to F32 once (backends compute on F32/BF16 weights).
inline Tensor load_weight(const io::Checkpoint& ckpt, const std::string& name, const Shape& shape) {
  FLAS_CHECK(ckpt.contains(name), ckpt.path().string(), ": missing tensor '", name, "' (expected shape ",
             shape, ")");
  const Shape got = ckpt.shape(name);
  FLAS_CHECK(got == shape, ckpt.path().string(), ": tensor '", name, "' has shape ", got,
             " but the config needs ", shape);
  const DType dt = ckpt.dtype(name);
  FLAS_CHECK(dt == DType::F32 || dt == DType::BF16 || dt == DType::F16 || dt == DType::F64, ckpt.path().string(),
             ": tensor '", name, "' has dtype ", dtype_name(dt), ", expected a floating dtype (F32, BF16, F16)");
  Tensor t = ckpt.get(name);
  if (dt == DType::F16 || dt == DType::F64) t = convert(t, DType::F32);
  return t;
}
}  // namespace detail

inline Weights load_weights(const io::Checkpoint& ckpt, const Config& c) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const std::int64_t qd = c.num_attention_heads * hd, kvd = c.num_key_value_heads * hd;
  auto w = [&](const std::string& n, const Shape& s) { return detail::load_weight(ckpt, n, s); };
  Weights out;
  out.embed = w("model.embed_tokens.weight", {c.vocab_size, H});
  out.final_norm = w("model.norm.weight", {H});
  if (!c.tie_word_embeddings)
    fail(ckpt.path().string(), ": tie_word_embeddings = false is not supported (Gemma-2 ties the LM head)");
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.input_norm = w(p + "input_layernorm.weight", {H});
    L.attn.q_proj = w(p + "self_attn.q_proj.weight", {qd, H});
    L.attn.k_proj = w(p + "self_attn.k_proj.weight", {kvd, H});
    L.attn.v_proj = w(p + "self_attn.v_proj.weight", {kvd, H});
    L.attn.o_proj = w(p + "self_attn.o_proj.weight", {H, qd});
    L.post_attn_norm = w(p + "post_attention_layernorm.weight", {H});
    L.pre_ff_norm = w(p + "pre_feedforward_layernorm.weight", {H});
    L.mlp.gate_proj = w(p + "mlp.gate_proj.weight", {I, H});
    L.mlp.up_proj = w(p + "mlp.up_proj.weight", {I, H});
    L.mlp.down_proj = w(p + "mlp.down_proj.weight", {H, I});
    L.post_ff_norm = w(p + "post_feedforward_layernorm.weight", {H});
    out.layers.push_back(std::move(L));
  }
  return out;
}

}  // namespace flas::gemma2
