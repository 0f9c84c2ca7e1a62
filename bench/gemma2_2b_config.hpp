#pragma once
// The Gemma-2-2B configuration (26 layers, hidden 2304, 8 heads / 4 KV heads of 256, MLP 9216, vocab
// 256000, alternating sliding/full layers), shared by the CPU and CUDA benchmarks.
#include "flas/models/gemma2/config.hpp"

namespace flas::bench {

inline gemma2::Config gemma2_2b_config() {
  gemma2::Config c;
  c.vocab_size = 256000;
  c.hidden_size = 2304;
  c.intermediate_size = 9216;
  c.num_hidden_layers = 26;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 256;
  c.query_pre_attn_scalar = 256;
  c.attn_logit_softcapping = 50;
  c.final_logit_softcapping = 30;
  c.sliding_window = 4096;
  c.max_position_embeddings = 8192;
  c.eos_token_ids = {1, 107};
  for (int l = 0; l < c.num_hidden_layers; ++l)
    c.layer_types.push_back(l % 2 == 0 ? gemma2::LayerType::sliding_attention : gemma2::LayerType::full_attention);
  return c;
}

}  // namespace flas::bench
