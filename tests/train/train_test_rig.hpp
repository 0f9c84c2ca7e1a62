#pragma once
// A random tiny Gemma-2 and FLAS flow for the finite-difference tests, chosen so that every rule the
// training maths must respect shows: GQA (4 heads on 2 KV heads), nH·hd ≠ H, query_pre_attn_scalar ≠ hd,
// a sliding window shorter than the sequence, soft-caps small enough to bend the scores and logits,
// right padding, padded concepts, rows sharing a concept, and every flow parameter random (no zero
// gate, norm or time-MLP layer hiding a term). Weights are f32-exact so f32 and f64 runs see the same.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "flas/field/flas_flow.hpp"
#include "flas/field/flow_init.hpp"
#include "flas/models/gemma2/model.hpp"
#include "flas/train/flas_loss.hpp"

namespace flas::train_test {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}
  Tensor uniform(const Shape& s, double bound, DType dtype = DType::F32) {
    Tensor t = Tensor::empty(s, DType::F64);
    std::uniform_real_distribution<double> u(-bound, bound);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = double(float(u(gen_)));
    return convert(t, dtype);
  }
  std::int64_t integer(std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(gen_); }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

inline gemma2::Config tiny_config() {
  gemma2::Config c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 6;
  c.query_pre_attn_scalar = 10;
  c.attn_logit_softcapping = 3.0;
  c.final_logit_softcapping = 2.5;
  c.sliding_window = 3;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    c.layer_types.push_back(l % 2 == 0 ? gemma2::LayerType::sliding_attention : gemma2::LayerType::full_attention);
  return c;
}

inline gemma2::Weights random_base(const gemma2::Config& c, Rng& rng) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, qd = c.num_attention_heads * c.head_dim,
                     kvd = c.num_key_value_heads * c.head_dim;
  gemma2::Weights w;
  w.embed = rng.uniform({c.vocab_size, H}, 0.5);
  w.final_norm = rng.uniform({H}, 0.3);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    gemma2::LayerWeights L;
    L.input_norm = rng.uniform({H}, 0.3), L.post_attn_norm = rng.uniform({H}, 0.3);
    L.pre_ff_norm = rng.uniform({H}, 0.3), L.post_ff_norm = rng.uniform({H}, 0.3);
    L.attn = {rng.uniform({qd, H}, 0.6), rng.uniform({kvd, H}, 0.6), rng.uniform({kvd, H}, 0.5), rng.uniform({H, qd}, 0.4)};
    L.mlp = {rng.uniform({I, H}, 0.5), rng.uniform({I, H}, 0.5), rng.uniform({H, I}, 0.4)};
    w.layers.push_back(L);
  }
  return w;
}

// Every parameter random: norms and gates around their scale, projections ~1/√fan_in.
inline field::FlowWeights random_flow(const gemma2::Config& c, const gemma2::Weights& base, int layer,
                                      field::FlowSwitches sw, int blocks, Rng& rng) {
  field::FlowWeights w = field::init_flow(c, base, layer, {blocks, sw, false, 0.1f, 7});
  field::for_each_flow_parameter(w, [&](const std::string& name, Tensor& t) {
    const bool matrix = t.rank() == 2;
    const double bound = matrix ? 1.2 / std::sqrt(double(t.dim(1))) : name.find("gate") != std::string::npos ? 0.6 : 0.4;
    t = rng.uniform(t.shape(), bound);
  });
  return w;
}

inline field::FlowWeights as_dtype(const field::FlowWeights& w, DType d) {
  field::FlowWeights out = w;
  field::for_each_flow_parameter(out, [&](const std::string&, Tensor& t) { t = convert(t, d); });
  return out;
}

// Right-padded rows of the given lengths; labels −100 on the first `prompt` tokens and on padding.
inline train::TrainBatch random_batch(const gemma2::Config& c, const std::vector<std::int64_t>& lengths,
                                      std::int64_t prompt, const std::vector<std::int64_t>& concept_lengths,
                                      std::vector<std::int64_t> concept_of_row, float T, int N, Rng& rng) {
  const std::int64_t Bn = std::int64_t(lengths.size()), S = *std::max_element(lengths.begin(), lengths.end());
  const std::int64_t Lc = *std::max_element(concept_lengths.begin(), concept_lengths.end());
  train::TrainBatch b;
  b.input_ids = zeros({Bn, S}, DType::I64);
  b.attention_mask = zeros({Bn, S}, DType::I64);
  b.labels = Tensor::empty({Bn, S}, DType::I64);
  b.concept_ids = zeros({Bn, Lc}, DType::I64);
  b.concept_mask = zeros({Bn, Lc}, DType::I64);
  for (std::int64_t r = 0; r < Bn; ++r) {
    for (std::int64_t s = 0; s < S; ++s) {
      const bool real = s < lengths[std::size_t(r)];
      const std::int64_t id = real ? rng.integer(3, c.vocab_size - 1) : 0;
      b.input_ids.data<std::int64_t>()[r * S + s] = id;
      b.attention_mask.data<std::int64_t>()[r * S + s] = real;
      b.labels.data<std::int64_t>()[r * S + s] = real && s >= prompt ? id : ignore_label;
    }
    for (std::int64_t s = 0; s < Lc; ++s) {
      const bool real = s < concept_lengths[std::size_t(r)];
      b.concept_ids.data<std::int64_t>()[r * Lc + s] = s == 0 ? 2 : real ? rng.integer(3, c.vocab_size - 1) : 0;
      b.concept_mask.data<std::int64_t>()[r * Lc + s] = real;
    }
  }
  b.concept_of_row = std::move(concept_of_row);
  b.flowtime = T;
  b.steps = N;
  return b;
}

}  // namespace flas::train_test
