#pragma once
// The Backend concept. A backend is a policy type: it names its memory space and the activation dtype
// it computes in, and provides the op set as static functions over its tensors. Models, fields and
// solvers are templates over a Backend, so a new backend is a new type — no model or solver edits.
//
// The op set (x, y row-major contiguous; "rows" = all leading dimensions flattened):
//   embedding(ids I64 [n], table [V,H], scale, out [n,H])        out = table[ids] · scale
//   linear(x [M,K], w [N,K], bias* [N] or nullptr, y [M,N])     y = x·wᵀ (+ b); w may be F32 or BF16
//   rms_norm(x [M,D], w [D], eps, y [M,D])                      y = x·rsqrt(mean x² + eps)·(1 + w); y may be x
//   add(y, x)                                                   y += x
//   add_gated(y, g [D], x)                                      y += g ⊙ x (g broadcast over rows)
//   rope(x [B,S,nh,hd], positions I64 [B,S], inv_freq F32 [hd/2])  in place, rotate_half pairing
//   gelu_tanh_mul(gate [M,I], up [M,I], out [M,I])              out = gelu_tanh(gate) ⊙ up
//   softcap(x, cap)                                             x = cap·tanh(x/cap), in place
//   attention(q [B,Sq,nH,hd], k [B,Sk,nKV,hd], v, out [B,Sq,nH,hd], AttentionParams)
//   axpy(y, a, x), scale(x, a), copy(dst, src), fill(x, value)
#include <concepts>
#include <cstdint>

#include "flas/core/dtype.hpp"
#include "flas/core/memory_space.hpp"
#include "flas/core/tensor.hpp"
#include "flas/core/attention_params.hpp"

namespace flas {

template <class B>
concept Backend = requires(BasicTensor<typename B::space>& y, const BasicTensor<typename B::space>& x,
                           const nn::AttentionParams& p, float a) {
  requires MemorySpace<typename B::space>;
  { B::name } -> std::convertible_to<const char*>;
  { B::activation_dtype } -> std::convertible_to<DType>;
  B::embedding(x, x, a, y);
  B::linear(x, x, &x, y);
  B::rms_norm(x, x, a, y);
  B::add(y, x);
  B::add_gated(y, x, x);
  B::rope(y, x, x);
  B::gelu_tanh_mul(x, x, y);
  B::softcap(y, a);
  B::attention(x, x, x, y, p);
  B::axpy(y, a, x);
  B::scale(y, a);
  B::copy(y, x);
  B::fill(y, a);
};

template <Backend B>
using tensor_t = BasicTensor<typename B::space>;

}  // namespace flas
