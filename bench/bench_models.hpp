#pragma once
// Models for benchmarks: the bundled chat model, and random weights with Gemma-2-2B shapes (2.6B
// parameters; 5.2 GB in bf16, 10.5 GB in f32 — one at a time fits this 24 GB machine), plus the
// anchors (llama.cpp on the same kind of machine, and its measured floors) to print beside our numbers.
#include <fstream>
#include <random>
#include <thread>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "flas/field/flow_init.hpp"
#include "flas/models/gemma2/model.hpp"
#include "gemma2_2b_config.hpp"

namespace flas::bench {

inline nlohmann::json anchors(const std::string& file) {
  std::ifstream in(std::string(FLAS_ANCHORS) + "/" + file);
  return nlohmann::json::parse(in);
}


// Uniform random values of a given scale, filled in parallel chunks (2.6B values take a few seconds).
inline Tensor random_tensor(const Shape& s, DType dt, float scale, std::uint64_t seed) {
  Tensor t = Tensor::empty(s, dt);
  const std::int64_t n = t.numel();
  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      std::minstd_rand rng(std::uint32_t(seed * 7919 + std::uint64_t(w)));
      const std::int64_t lo = n * w / threads, hi = n * (w + 1) / threads;
      for (std::int64_t i = lo; i < hi; ++i) {
        const float x = scale * (float(rng()) / float(std::minstd_rand::max()) * 2.0f - 1.0f);
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

inline std::vector<std::int64_t> prompt_of(std::int64_t n, std::int64_t vocab) {
  std::vector<std::int64_t> ids{2};
  for (std::int64_t i = 1; i < n; ++i) ids.push_back(3 + (i * 7919) % (vocab - 3));
  return ids;
}

// Every weight tensor of a model: the bytes a decode step streams.
inline std::vector<const Tensor*> weight_buffers(const gemma2::Weights& w) {
  std::vector<const Tensor*> out{&w.embed, &w.final_norm};
  for (const auto& L : w.layers)
    for (const Tensor* t : {&L.input_norm, &L.post_attn_norm, &L.pre_ff_norm, &L.post_ff_norm, &L.attn.q_proj,
                            &L.attn.k_proj, &L.attn.v_proj, &L.attn.o_proj, &L.mlp.gate_proj, &L.mlp.up_proj,
                            &L.mlp.down_proj})
      out.push_back(t);
  return out;
}

// Weights converted to another dtype (the f32 variant of the bundled bf16 model).
inline gemma2::Weights converted(const gemma2::Weights& w, DType dt) {
  gemma2::Weights out = w;
  out.embed = convert(w.embed, dt);
  out.final_norm = convert(w.final_norm, dt);
  for (auto& L : out.layers)
    for (Tensor* t : {&L.input_norm, &L.post_attn_norm, &L.pre_ff_norm, &L.post_ff_norm, &L.attn.q_proj, &L.attn.k_proj,
                      &L.attn.v_proj, &L.attn.o_proj, &L.mlp.gate_proj, &L.mlp.up_proj, &L.mlp.down_proj})
      *t = convert(*t, dt);
  return out;
}

}  // namespace flas::bench
