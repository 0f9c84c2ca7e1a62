#pragma once
// A Gemma-2 config.json. An accepted config must describe a model flas can size: every layer has a
// type, token ids lie in the vocabulary, and the shapes the model and a flow derive from it are
// computable without overflow.
#include <string_view>
#include <cstdint>
#include "flas/field/flow_weights.hpp"
#include "flas/models/gemma2/config.hpp"
#include "fuzz_support.hpp"

namespace flas::fuzz {

inline void feed_gemma2_config(std::string_view input) {
  const std::size_t size = input.size();
  const auto file = fuzz::scratch_file("config.json", input);
  fuzz::refuses_cleanly([&] {
    const auto c = gemma2::Config::load(file);
    if (std::int64_t(c.layer_types.size()) != c.num_hidden_layers) fuzz::finding("layer_types size != layers");
    for (int l = 0; l < int(c.layer_types.size()); ++l) (void)c.is_sliding(l);
    for (std::int64_t id : c.eos_token_ids)
      if (id < 0 || id >= c.vocab_size) fuzz::finding("eos id outside the vocabulary");
    if (c.head_dim <= 0 || c.head_dim % 2 != 0) fuzz::finding("head_dim not positive and even");
    for (const char* name : {"time_embed.mlp.0.weight", "blocks.0.cross_attn.q_proj.weight",
                             "blocks.0.self_attn.k_proj.weight", "blocks.0.up_proj.weight", "blocks.0.down_proj.weight"}) {
      const Shape s = field::expected_flow_shape(name, c);
      (void)s;
    }
  });
}

}  // namespace flas::fuzz
