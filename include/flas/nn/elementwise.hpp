#pragma once
// Ops outside the core Backend set that only small, cold parts of the flow need (the time MLP's SiLU).
// A backend may provide its own (`B::silu`); otherwise host tensors get a plain loop. A device backend
// without one fails to compile here, which names the missing op.
#include <cmath>

#include "flas/core/backend.hpp"

namespace flas::nn {

template <Backend B>
void silu(tensor_t<B>& x) {
  if constexpr (requires { B::silu(x); }) {
    B::silu(x);
  } else {
    static_assert(std::is_same_v<typename B::space, HostSpace>, "this backend must provide B::silu");
    auto loop = [&](auto* p) {
      for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = p[i] / (1 + std::exp(-p[i]));
    };
    if (x.dtype() == DType::F64) loop(x.template data<double>());
    else loop(x.template data<float>());
  }
}

}  // namespace flas::nn
