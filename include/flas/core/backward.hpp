#pragma once
// Backward (VJP) ops: the extension point a backend fills to become trainable. The forward ops stay on
// the backend type (backend.hpp); the backward ops live in a separate specialisation,
// `template <> struct BackwardOps<MyBackend>`, so a backend can ship forward-only and gain training
// later without touching its forward code or any model. The primary template is left undefined: a
// backend without a specialisation is simply not a TrainableBackend.
//
// Conventions ("dX" = cotangent of X; activations in B::activation_dtype; weights F32 or BF16;
// parameter gradients in the activation dtype — F32 for f32 backends, F64 for the f64 oracle):
//   write       the output is fully overwritten (it may hold garbage, NaN included, on entry)
//   accumulate  the gradient is added into the given tensor, so uses of one parameter sum up
//   nullptr     a frozen parameter (or an input that needs no cotangent): nothing is computed for it
//
//   linear_backward(x [M,K], w [N,K], dy [M,N], dx* [M,K] write, dw* [N,K] acc, db* [N] acc)
//   rms_norm_backward(x [M,D], w [D], eps, dy [M,D], dx [M,D] write (may be dy), dw* [D] acc)
//   add_gated_backward(g [D], x [M,D], dy [M,D], dx [M,D] write, dg* [D] acc)      for y += g ⊙ x
//   rope_backward(dx [B,S,nh,hd] in place, positions I64 [B,S], inv_freq F32 [hd/2])
//   gelu_tanh_mul_backward(gate, up, dout, dgate write, dup write)
//   softcap_backward(y_capped, cap, dy, dx write (may be dy))                       dx = dy·(1 − (y/cap)²)
//   attention_backward(q, k, v, out, dout, AttentionParams, dq write, dk acc, dv acc)
//       dk/dv are [B, capacity, nKV, hd] buffers; only rows < kv_len are touched
//   silu_backward(x, dy, dx write)
//   cross_entropy(logits [M,V], labels I64 [M], dlogits* [M,V] write (may be logits)) -> mean loss
//
// Only the cotangent of an op's own output enters: the residual path of add_gated (dy flows to y
// unchanged) and sums over uses are the caller's business.
#include <concepts>
#include <cstdint>

#include "flas/core/backend.hpp"
#include "flas/core/tensor.hpp"
#include "flas/core/attention_params.hpp"

namespace flas {

template <class B>
struct BackwardOps;  // specialised per backend; see docs/backward.md

template <class B>
concept TrainableBackend =
    Backend<B> && requires(BasicTensor<typename B::space>& y, const BasicTensor<typename B::space>& x,
                           BasicTensor<typename B::space>* grad, const nn::AttentionParams& p, float a) {
      BackwardOps<B>::linear_backward(x, x, x, grad, grad, grad);
      BackwardOps<B>::rms_norm_backward(x, x, a, x, y, grad);
      BackwardOps<B>::add_gated_backward(x, x, x, y, grad);
      BackwardOps<B>::rope_backward(y, x, x);
      BackwardOps<B>::gelu_tanh_mul_backward(x, x, x, y, y);
      BackwardOps<B>::softcap_backward(x, a, x, y);
      BackwardOps<B>::attention_backward(x, x, x, x, x, p, y, y, y);
      BackwardOps<B>::silu_backward(x, x, y);
      { BackwardOps<B>::cross_entropy(x, x, grad) } -> std::convertible_to<double>;
    };

// The label that cross_entropy skips (HF's ignore_index).
inline constexpr std::int64_t ignore_label = -100;

// HF's causal-LM loss compares logits[:, :−1] with labels[:, 1:]. shift_labels(labels [.., S]) returns
// labels[:, 1:] with ignore_label appended to each row, so that cross_entropy over all S positions of
// the unshifted logits equals HF's loss (the last position's logits get no gradient), and no [B, S−1]
// copy of the logits is needed. Host tensors (labels are small).
inline Tensor shift_labels(const Tensor& labels) {
  FLAS_CHECK(labels.dtype() == DType::I64 && labels.rank() >= 1, "shift_labels: labels must be I64 [B, S], got ",
             dtype_name(labels.dtype()), " ", labels.shape());
  const std::int64_t S = labels.dim(-1), rows = S == 0 ? 0 : labels.numel() / S;
  Tensor out = Tensor::empty(labels.shape(), DType::I64);
  const auto* in = labels.data<std::int64_t>();
  auto* o = out.data<std::int64_t>();
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t s = 0; s + 1 < S; ++s) o[r * S + s] = in[r * S + s + 1];
    o[r * S + S - 1] = ignore_label;
  }
  return out;
}

}  // namespace flas
