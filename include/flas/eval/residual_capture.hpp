#pragma once
// A steering tap that changes nothing and keeps a host f32 copy of the residual stream after one
// decoder layer: how DiffMean (and trajectory tools) read hidden states out of an unmodified model.
#include <type_traits>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/steering_tap.hpp"

namespace flas::eval {

// A host f32 copy of a backend tensor (device tensors come back through their backend's to_host).
template <class T>
Tensor host_f32(const T& t) {
  if constexpr (std::is_same_v<T, Tensor>) {
    return convert(t, DType::F32);
  } else {
    return convert(to_host(t), DType::F32);
  }
}

template <Backend B>
struct ResidualCapture {
  int layer = 0;
  Tensor captured;  // F32 [B, S, H] of the last forward

  bool wants(int l) const { return l == layer; }
  void operator()(gemma2::TapSite<B>& site) { captured = host_f32(site.h); }
};

}  // namespace flas::eval
