#pragma once
// Gemma-2-2B-shaped models for the CUDA benchmark: the real config (26 layers, hidden 2304, 8 heads /
// 4 KV heads of 256, MLP 9216, vocab 256000) with random bf16 weights made on the host in parallel
// (2.6B values: a second or two on 16 cores), and a 1-block FLAS flow initialised from layer L as the
// reference does, stored in bf16 like the released checkpoints.
#include <cstdint>
#include <thread>
#include <vector>

#include "flas/field/flow_init.hpp"
#include "flas/models/gemma2/model.hpp"
#include "../gemma2_2b_config.hpp"

namespace flas::bench_cuda {

inline gemma2::Config gemma2_2b_config() {
  gemma2::Config c = bench::gemma2_2b_config();
  c.dtype = DType::BF16;  // the weights below are bf16, like the released checkpoints
  return c;
}

// Values uniform in [−scale, scale) from a per-element hash (no sequential RNG: threads fill
// disjoint ranges independently).
inline Tensor random_bf16(const Shape& s, float scale, std::uint64_t seed) {
  Tensor t = Tensor::empty(s, DType::BF16);
  bf16* p = t.data<bf16>();
  const std::int64_t n = t.numel();
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w)
    pool.emplace_back([=] {
      for (std::int64_t i = n * w / threads; i < n * (w + 1) / threads; ++i) {
        std::uint64_t z = (std::uint64_t(i) + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
        z ^= z >> 31;
        const float u = float(z >> 40) / float(1ull << 24);  // [0, 1)
        p[i] = f32_to_bf16(scale * (2.0f * u - 1.0f));
      }
    });
  for (auto& th : pool) th.join();
  return t;
}

inline gemma2::Weights random_weights(const gemma2::Config& c) {
  const std::int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const std::int64_t qd = c.num_attention_heads * hd, kvd = c.num_key_value_heads * hd;
  std::uint64_t seed = 1;
  auto w = [&](const Shape& s, float scale) { return random_bf16(s, scale, seed++); };
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

// Bytes a decode step must read at least: every weight once (the tied embedding as the LM head).
inline double weight_bytes(const gemma2::Weights& w) {
  double b = double(w.embed.bytes() + w.final_norm.bytes());
  for (const auto& L : w.layers)
    for (const Tensor* t : {&L.input_norm, &L.post_attn_norm, &L.pre_ff_norm, &L.post_ff_norm, &L.attn.q_proj,
                            &L.attn.k_proj, &L.attn.v_proj, &L.attn.o_proj, &L.mlp.gate_proj, &L.mlp.up_proj,
                            &L.mlp.down_proj})
      b += double(t->bytes());
  return b;
}

// A 1-block flow from base layer L (f32 as init_flow makes it), stored in bf16.
inline field::FlowWeights bf16_flow(const gemma2::Config& c, const gemma2::Weights& base, int layer) {
  field::FlowInit init;
  init.blocks = 1;
  field::FlowWeights w = field::init_flow(c, base, layer, init);
  field::for_each_flow_parameter(w, [](const std::string&, Tensor& t) { t = convert(t, DType::BF16); });
  return w;
}

}  // namespace flas::bench_cuda
