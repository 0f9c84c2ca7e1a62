#pragma once
// The steering tap: a hook that sees the residual stream after a chosen decoder layer, in prefill and
// in decode, with each token's position and the padding mask, and may replace it in place. The model
// takes the tap as a template argument; `NoTap` compiles the call away.
#include <concepts>
#include <cstdint>

#include "flas/core/backend.hpp"

namespace flas::gemma2 {

template <Backend B>
struct TapSite {
  int layer;                         // the decoder layer whose output this is (−1: the embedding)
  tensor_t<B>& h;                    // [B, S, H] the residual stream of the new tokens; may be modified
  const Tensor& positions;           // I64 [B, S] RoPE positions of the new tokens
  const std::uint8_t* key_valid;     // [B, capacity] validity of every slot (past and new)
  std::int64_t capacity;             // row stride of key_valid
  std::int64_t past;                 // slots before the new tokens (0 in prefill)
  bool decode() const { return past > 0; }
};

// A tap names the layers it wants and is called there.
template <class T, class B>
concept SteeringTap = requires(T& t, TapSite<B>& site, int layer) {
  { t.wants(layer) } -> std::convertible_to<bool>;
  t(site);
};

struct NoTap {
  static constexpr bool wants(int) { return false; }
  template <class Site>
  void operator()(Site&) {}
};

}  // namespace flas::gemma2
