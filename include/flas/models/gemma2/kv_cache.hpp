#pragma once
// The KV cache of a batch: per layer, K and V of shape [B, capacity, nKV, hd] in the backend's
// activation dtype, one validity byte per slot (left padding is invalid), and the number of real
// tokens per row (the next token's position). Rows share one slot layout: slot = step index.
#include <cstdint>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/config.hpp"

namespace flas::gemma2 {

template <Backend B>
struct KVCache {
  std::vector<tensor_t<B>> k, v;     // per layer
  std::vector<std::uint8_t> valid;   // [B, capacity]
  std::vector<std::int64_t> real;    // per row: real tokens so far
  std::int64_t batch = 0, capacity = 0, length = 0;

  KVCache() = default;
  KVCache(const Config& c, std::int64_t batch_size, std::int64_t cap) : batch(batch_size), capacity(cap) {
    const Shape s{batch, capacity, c.num_key_value_heads, c.head_dim};
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      k.push_back(tensor_t<B>::empty(s, B::activation_dtype));
      v.push_back(tensor_t<B>::empty(s, B::activation_dtype));
    }
    valid.assign(std::size_t(batch * capacity), 0);
    real.assign(std::size_t(batch), 0);
  }
  std::int64_t free_slots() const { return capacity - length; }
};

}  // namespace flas::gemma2
