#pragma once
// The base-model config the flow fuzz target and its seed generator share: small enough that a
// complete flow checkpoint is a few KB.
#include "flas/models/gemma2/config.hpp"

namespace flas::fuzz {

inline gemma2::Config tiny_flow_config() {
  const nlohmann::json j = {{"model_type", "gemma2"},    {"vocab_size", 16},      {"hidden_size", 4},
                            {"intermediate_size", 6},    {"num_hidden_layers", 2}, {"num_attention_heads", 2},
                            {"num_key_value_heads", 1},  {"head_dim", 2}};
  return gemma2::Config::from_json(j, "tiny_flow_config");
}

}  // namespace flas::fuzz
