#pragma once
// Fresh FLAS flows, as the reference builds them: every block's self-attention, MLP and their four
// norms copied from base layer L (or Xavier-uniform projections and zero norms); cross-attention
// projections default-initialised (torch's nn.Linear: U(−1/√in, 1/√in)); cross and q/k norms 0
// (Gemma norms are (1 + w)); gates 0.1; the time MLP's first layer default, its last layer zero.
// Parameters are owned f32 tensors, ready to train.
#include <cmath>
#include <random>

#include "flas/field/flow_weights.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::field {

struct FlowInit {
  int blocks = 1;
  FlowSwitches switches;
  bool from_base_layer = true;  // false: Xavier-uniform self-attention and MLP projections
  float gate = 0.1f;
  std::uint64_t seed = 0;
};

namespace detail {
inline Tensor filled(const Shape& s, float value) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::fill_n(t.data<float>(), t.numel(), value);
  return t;
}
inline Tensor uniform(const Shape& s, float bound, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(s, DType::F32);
  std::uniform_real_distribution<float> u(-bound, bound);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}
// torch.nn.Linear's default: U(−1/√fan_in, 1/√fan_in).
inline Tensor torch_default(const Shape& s, std::mt19937_64& rng) { return uniform(s, 1.0f / std::sqrt(float(s[1])), rng); }
inline Tensor xavier(const Shape& s, std::mt19937_64& rng) {
  return uniform(s, std::sqrt(6.0f / float(s[0] + s[1])), rng);
}
inline Tensor f32_copy(const Tensor& t) { return convert(t, DType::F32); }
}  // namespace detail

inline FlowWeights init_flow(const gemma2::Config& c, const gemma2::Weights& base, int layer, const FlowInit& opt) {
  FLAS_CHECK(layer >= 0 && layer < c.num_hidden_layers, "flow init: layer ", layer, " is outside 0..",
             c.num_hidden_layers - 1);
  FLAS_CHECK(opt.blocks >= 1, "flow init: at least one block, got ", opt.blocks);
  FLAS_CHECK(!(opt.switches.cross_attn && opt.switches.pooled), "flow init: choose cross-attention or pooled conditioning, not both");
  std::mt19937_64 rng(opt.seed);
  FlowWeights w;
  w.switches = opt.switches;
  w.blocks.resize(std::size_t(opt.blocks));
  const auto& src = base.layers[std::size_t(layer)];
  for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) {
    const Shape s = expected_flow_shape(name, c);
    auto ends = [&](std::string_view x) { return name.size() >= x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0; };
    auto has = [&](std::string_view x) { return name.find(x) != std::string::npos; };
    if (ends("_gate")) t = detail::filled(s, opt.gate);
    else if (name == "time_embed.mlp.0.weight") t = detail::torch_default(s, rng);
    else if (name == "time_embed.mlp.0.bias") t = detail::uniform(s, 1.0f / std::sqrt(float(condition::time_frequency_dim)), rng);
    else if (has("time_embed.mlp.2")) t = detail::filled(s, 0.0f);
    else if ((has("cross_attn.") && ends("proj.weight")) || ends("concept_proj.weight")) t = detail::torch_default(s, rng);
    else if (has("cross")) t = detail::filled(s, 0.0f);  // pre/post cross norms and q/k norms
    else if (!opt.from_base_layer && ends("proj.weight")) t = detail::xavier(s, rng);
    else if (!opt.from_base_layer) t = detail::filled(s, 0.0f);  // norms of a Xavier flow: (1 + 0)
    else if (ends("self_attn.q_proj.weight")) t = detail::f32_copy(src.attn.q_proj);
    else if (ends("self_attn.k_proj.weight")) t = detail::f32_copy(src.attn.k_proj);
    else if (ends("self_attn.v_proj.weight")) t = detail::f32_copy(src.attn.v_proj);
    else if (ends("self_attn.o_proj.weight")) t = detail::f32_copy(src.attn.o_proj);
    else if (ends("pre_sa_norm.weight")) t = detail::f32_copy(src.input_norm);
    else if (ends("post_sa_norm.weight")) t = detail::f32_copy(src.post_attn_norm);
    else if (ends("pre_mlp_norm.weight")) t = detail::f32_copy(src.pre_ff_norm);
    else if (ends("post_mlp_norm.weight")) t = detail::f32_copy(src.post_ff_norm);
    else if (ends("gate_proj.weight")) t = detail::f32_copy(src.mlp.gate_proj);
    else if (ends("up_proj.weight")) t = detail::f32_copy(src.mlp.up_proj);
    else if (ends("down_proj.weight")) t = detail::f32_copy(src.mlp.down_proj);
    else fail("flow init: no rule for parameter '", name, "'");
    FLAS_CHECK(t.shape() == s, "flow init: '", name, "' got shape ", t.shape(), ", expected ", s);
  });
  return w;
}

}  // namespace flas::field
