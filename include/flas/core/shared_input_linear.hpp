#pragma once
// Several projections of one input: y_i = x · w_iᵀ (q/k/v of an attention block, gate/up of an MLP).
// A backend that runs them better as one launch provides
//   static void linear_shared_input(const tensor_t& x, std::span<const SharedInputProjection<tensor_t>>);
// (CpuBackend: x packed once, one thread team and one barrier for all of them instead of one each);
// any other backend gets one B::linear per weight, so models call this and backends opt in.
//   linear_shared_input<B>(x, {{&w.q_proj, &q}, {&w.k_proj, &k}, {&w.v_proj, &v}});
// Results are those of separate B::linear calls up to summation order (the CPU backend's prefill
// kernel: bit-identical).
#include <initializer_list>
#include <span>

#include "flas/core/backend.hpp"

namespace flas {

template <class Y>
struct SharedInputProjection {
  const Tensor* w;  // [N_i, K], as B::linear takes it
  Y* y;             // [rows of x, N_i]
};

template <class B>
concept HasSharedInputLinear =
    Backend<B> && requires(const tensor_t<B>& x, std::span<const SharedInputProjection<tensor_t<B>>> ps) {
      B::linear_shared_input(x, ps);
    };

template <Backend B>
void linear_shared_input(const tensor_t<B>& x, std::initializer_list<SharedInputProjection<tensor_t<B>>> ps) {
  if constexpr (HasSharedInputLinear<B>) {
    B::linear_shared_input(x, std::span<const SharedInputProjection<tensor_t<B>>>(ps.begin(), ps.size()));
  } else {
    for (const auto& p : ps) B::linear(x, *p.w, nullptr, *p.y);
  }
}

}  // namespace flas
