#pragma once
// Random-weight models for the benchmarks (CPU and CUDA): Gemma-2 weights of any config in f32 or bf16,
// uniform in [−scale, scale) from a per-element hash, so the values do not depend on the thread count
// and threads fill disjoint ranges independently (2.6B values: seconds); the reference's 1-block flow;
// a synthetic prompt.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "flas/field/flow_init.hpp"
#include "flas/models/gemma2/weights.hpp"

namespace flas::bench {

inline Tensor random_tensor(const Shape& s, DType dt, float scale, std::uint64_t seed) {
  Tensor t = Tensor::empty(s, dt);
  const std::int64_t n = t.numel();
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      for (std::int64_t i = n * w / threads; i < n * (w + 1) / threads; ++i) {
        std::uint64_t z = (std::uint64_t(i) + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
        z ^= z >> 31;
        const float x = scale * (2.0f * (float(z >> 40) / float(1ull << 24)) - 1.0f);
        if (dt == DType::BF16) t.data<bf16>()[i] = f32_to_bf16(x);
        else t.data<float>()[i] = x;
      }
    });
  for (auto& th : pool) th.join();
  return t;
}

inline gemma2::Weights random_weights(const gemma2::Config& c, DType dt) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const std::int64_t qd = c.num_attention_heads * hd, kvd = c.num_key_value_heads * hd;
  std::uint64_t seed = 1;
  auto w = [&](const Shape& s, float scale) { return random_tensor(s, dt, scale, seed++); };
  gemma2::Weights out;
  out.embed = w({c.vocab_size, H}, 0.02f);
  out.final_norm = w({H}, 0.1f);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    gemma2::LayerWeights L;
    L.input_norm = w({H}, 0.1f);
    L.post_attn_norm = w({H}, 0.1f);
    L.pre_ff_norm = w({H}, 0.1f);
    L.post_ff_norm = w({H}, 0.1f);
    L.attn = {w({qd, H}, 0.02f), w({kvd, H}, 0.02f), w({kvd, H}, 0.02f), w({H, qd}, 0.02f)};
    L.mlp = {w({I, H}, 0.02f), w({I, H}, 0.02f), w({H, I}, 0.02f)};
    out.layers.push_back(std::move(L));
  }
  return out;
}

// The reference's benchmark flow: one block initialised from base layer `layer`, stored in `dt` (f32 to
// train, bf16 to deploy beside a bf16 base).
inline field::FlowWeights one_block_flow(const gemma2::Config& c, const gemma2::Weights& base, int layer, DType dt) {
  field::FlowInit init;
  init.blocks = 1;
  return field::flow_weights_as(field::init_flow(c, base, layer, init), dt);
}

// <bos> then a deterministic spread over the vocabulary.
inline std::vector<std::int64_t> prompt_of(std::int64_t n, std::int64_t vocab) {
  std::vector<std::int64_t> ids{2};
  for (std::int64_t i = 1; i < n; ++i) ids.push_back(3 + (i * 7919) % (vocab - 3));
  return ids;
}

// Every weight tensor of a model: the bytes a decode step streams (the tied embedding as the head).
inline std::vector<const Tensor*> weight_buffers(const gemma2::Weights& w) {
  std::vector<const Tensor*> out;
  gemma2::for_each_weight(w, [&](const Tensor& t) { out.push_back(&t); });
  return out;
}

}  // namespace flas::bench
