#pragma once
// The FLAS flow's parameters: an optional time MLP and B blocks of gated cross-attention, gated
// self-attention and a gated MLP, each with Gemma pre/post norms. Parts may be switched off (the
// reference's --disable-* flags); a switched-off part has no tensors.
#include <functional>
#include <string>
#include <vector>

#include "flas/condition/cross_attention.hpp"
#include "flas/condition/time_embedding.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::field {

// Concept conditioning (one of): cross-attention (FLAS), pooled-additive (the masked mean of the
// concept states, projected and added — an ablation), or none when both are off.
struct FlowSwitches {
  bool time = true, cross_attn = true, self_attn = true, mlp = true, pooled = false;
  friend bool operator==(const FlowSwitches&, const FlowSwitches&) = default;
};

struct FlowBlockWeights {
  Tensor pre_cross_norm, post_cross_norm, cross_gate;
  condition::CrossAttentionWeights cross;
  Tensor concept_proj;  // pooled-additive conditioning: [H, H]
  Tensor pre_sa_norm, post_sa_norm, self_attn_gate;
  gemma2::AttentionWeights self_attn;
  Tensor pre_mlp_norm, post_mlp_norm, mlp_gate;
  gemma2::MlpWeights mlp;
};

struct FlowWeights {
  FlowSwitches switches;
  condition::TimeEmbeddingWeights time;
  std::vector<FlowBlockWeights> blocks;
};

// Visits every parameter with its reference checkpoint name (`time_embed.mlp.0.weight`,
// `blocks.0.cross_attn.q_proj.weight`, `blocks.0.cross_gate`, ...). Drives loading, saving, zeroing
// and the optimiser alike, so the names live in one place.
template <class Weights, class Visit>
void for_each_flow_parameter(Weights& w, Visit&& visit) {
  if (w.switches.time) {
    visit("time_embed.mlp.0.weight", w.time.w1);
    visit("time_embed.mlp.0.bias", w.time.b1);
    visit("time_embed.mlp.2.weight", w.time.w2);
    visit("time_embed.mlp.2.bias", w.time.b2);
  }
  for (std::size_t i = 0; i < w.blocks.size(); ++i) {
    auto& b = w.blocks[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    if (w.switches.cross_attn) {
      visit(p + "pre_cross_norm.weight", b.pre_cross_norm);
      visit(p + "cross_attn.q_proj.weight", b.cross.q_proj);
      visit(p + "cross_attn.k_proj.weight", b.cross.k_proj);
      visit(p + "cross_attn.v_proj.weight", b.cross.v_proj);
      visit(p + "cross_attn.o_proj.weight", b.cross.o_proj);
      visit(p + "cross_attn.q_norm.weight", b.cross.q_norm);
      visit(p + "cross_attn.k_norm.weight", b.cross.k_norm);
      visit(p + "post_cross_norm.weight", b.post_cross_norm);
      visit(p + "cross_gate", b.cross_gate);
    }
    if (w.switches.pooled) {
      visit(p + "concept_proj.weight", b.concept_proj);
      visit(p + "post_cross_norm.weight", b.post_cross_norm);
      visit(p + "cross_gate", b.cross_gate);
    }
    if (w.switches.self_attn) {
      visit(p + "pre_sa_norm.weight", b.pre_sa_norm);
      visit(p + "self_attn.q_proj.weight", b.self_attn.q_proj);
      visit(p + "self_attn.k_proj.weight", b.self_attn.k_proj);
      visit(p + "self_attn.v_proj.weight", b.self_attn.v_proj);
      visit(p + "self_attn.o_proj.weight", b.self_attn.o_proj);
      visit(p + "post_sa_norm.weight", b.post_sa_norm);
      visit(p + "self_attn_gate", b.self_attn_gate);
    }
    if (w.switches.mlp) {
      visit(p + "pre_mlp_norm.weight", b.pre_mlp_norm);
      visit(p + "gate_proj.weight", b.mlp.gate_proj);
      visit(p + "up_proj.weight", b.mlp.up_proj);
      visit(p + "down_proj.weight", b.mlp.down_proj);
      visit(p + "post_mlp_norm.weight", b.post_mlp_norm);
      visit(p + "mlp_gate", b.mlp_gate);
    }
  }
}

// A deep copy: FlowWeights copies share their tensors' bytes (tensors are shared handles), so an
// edited variant of a flow must be cloned first.
inline FlowWeights clone_flow_weights(const FlowWeights& w) {
  FlowWeights out = w;
  for_each_flow_parameter(out, [](const std::string&, Tensor& t) { t = clone(t); });
  return out;
}

// A copy with every parameter converted to `dt` (a flow stored in bf16 like its base model).
inline FlowWeights flow_weights_as(FlowWeights w, DType dt) {
  for_each_flow_parameter(w, [&](const std::string&, Tensor& t) { t = convert(t, dt); });
  return w;
}

// The shape every parameter must have for a base model config.
inline Shape expected_flow_shape(const std::string& name, const gemma2::Config& c) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const std::int64_t qd = c.num_attention_heads * hd, kvd = c.num_key_value_heads * hd;
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  if (name == "time_embed.mlp.0.weight") return {H, condition::time_frequency_dim};
  if (name == "time_embed.mlp.2.weight") return {H, H};
  if (ends("q_norm.weight") || ends("k_norm.weight")) return {hd};
  if (ends("q_proj.weight")) return {qd, H};
  if (ends("k_proj.weight") || ends("v_proj.weight")) return {kvd, H};
  if (ends("o_proj.weight")) return {H, qd};
  if (ends("concept_proj.weight")) return {H, H};
  if (ends("gate_proj.weight") || ends("up_proj.weight")) return {I, H};
  if (ends("down_proj.weight")) return {H, I};
  return {H};  // norms, gates, biases
}

}  // namespace flas::field
