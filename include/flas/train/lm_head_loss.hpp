#pragma once
// The causal-LM loss of Gemma-2 from the last decoder layer's output, and its gradient with respect to
// that output: final RMSNorm, tied head h·Eᵀ, final soft-cap, HF's shifted mean cross-entropy
// (logits[:, :−1] against labels[:, 1:], mean over labels ≠ −100). The [rows, V] logits of a real
// vocabulary are large (4 × 256 tokens × 256k ≈ 1 GB in f32), so rows are processed in chunks: each
// chunk's logits are made, scored and turned into ∂L/∂normed before the next chunk is made; and rows
// whose label is ignored (prompt, padding) never reach the head.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "flas/core/backward.hpp"
#include "flas/models/gemma2/model.hpp"
#include "flas/train/activations.hpp"

namespace flas::train {

struct LmLoss {
  double loss = 0;           // HF's mean cross-entropy (0 when no label counts)
  std::int64_t tokens = 0;   // labels that count
};

inline std::int64_t counted_labels(const Tensor& shifted) {
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < shifted.numel(); ++i) n += shifted.data<std::int64_t>()[i] != ignore_label;
  return n;
}

// The runs [r0, r1) of consecutive rows whose (shifted) label counts.
inline std::vector<std::pair<std::int64_t, std::int64_t>> counted_runs(const Tensor& shifted) {
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;
  const auto* l = shifted.data<std::int64_t>();
  for (std::int64_t i = 0; i < shifted.numel(); ++i)
    if (l[i] != ignore_label) {
      if (!runs.empty() && runs.back().second == i) ++runs.back().second;
      else runs.emplace_back(i, i + 1);
    }
  return runs;
}

// x *= a with a rounded to x's dtype, not to f32 as B::scale's argument is (f64 runs stay f64-exact).
template <Backend B>
void scale_in_own_precision(tensor_t<B>& x, double a) {
  if constexpr (std::is_same_v<typename B::space, HostSpace>) {
    if (x.dtype() == DType::F64) {
      for (std::int64_t i = 0; i < x.numel(); ++i) x.template data<double>()[i] *= a;
      return;
    }
  }
  B::scale(x, float(a));
}

// h_last [B, S, H]: output of the last decoder layer; labels I64 [B, S], unshifted (HF convention).
// dh_last (may be nullptr): written with ∂loss/∂h_last. max_logit_elements bounds one chunk's logits.
template <TrainableBackend B>
LmLoss lm_head_loss(const gemma2::Model<B>& model, const tensor_t<B>& h_last, const Tensor& labels, tensor_t<B>* dh_last,
                    std::int64_t max_logit_elements = std::int64_t(1) << 26) {
  using Ops = BackwardOps<B>;
  const auto& c = model.config();
  const float eps = float(c.rms_norm_eps), cap = float(c.final_logit_softcapping);
  const std::int64_t H = c.hidden_size, V = c.vocab_size, rows = h_last.numel() / H;
  FLAS_CHECK(labels.dtype() == DType::I64 && labels.numel() == rows, "LM loss: labels ", dtype_name(labels.dtype()),
             " ", labels.shape(), " do not match the hidden states ", h_last.shape());
  const Tensor shifted = shift_labels(labels).view({rows});
  LmLoss out;
  out.tokens = counted_labels(shifted);

  const auto flat = h_last.view({rows, H});
  auto normed = activation<B>({rows, H});
  B::rms_norm(flat, model.weights().final_norm, eps, normed);
  auto d_normed = dh_last ? activation<B>({rows, H}) : tensor_t<B>{};
  if (dh_last && out.tokens != rows) B::fill(d_normed, 0.0f);  // rows without a counted label get no gradient
  if (out.tokens == 0) {
    if (dh_last) B::fill(*dh_last, 0.0f);
    return out;
  }

  // Only rows with a counted label reach the tied head (prompt and padding rows add nothing to the loss
  // or its gradient): their runs are gathered into one compact block, the head's largest product.
  const auto runs = counted_runs(shifted);
  auto x_all = out.tokens == rows ? normed : activation<B>({out.tokens, H});
  Tensor lab_all = out.tokens == rows ? shifted : Tensor::empty({out.tokens}, DType::I64);
  if (out.tokens != rows) {
    std::int64_t at = 0;
    for (const auto& [r0, r1] : runs) {
      auto dst = x_all.slice(at, at + (r1 - r0));
      B::copy(dst, normed.slice(r0, r1));
      std::copy(shifted.data<std::int64_t>() + r0, shifted.data<std::int64_t>() + r1, lab_all.data<std::int64_t>() + at);
      at += r1 - r0;
    }
  }
  auto d_all = !dh_last ? tensor_t<B>{} : out.tokens == rows ? d_normed : activation<B>({out.tokens, H});

  const std::int64_t n_all = out.tokens;
  const std::int64_t chunk = std::clamp<std::int64_t>(max_logit_elements / V, 1, n_all);
  auto logits = activation<B>({std::min(chunk, n_all), V});
  for (std::int64_t r0 = 0; r0 < n_all; r0 += chunk) {
    const std::int64_t r1 = std::min(n_all, r0 + chunk), n = r1 - r0;
    const Tensor lab = lab_all.slice(r0, r1);
    auto lg = logits.slice(0, n);
    const auto x = x_all.slice(r0, r1);
    B::linear(x, model.weights().embed, nullptr, lg);
    if (cap > 0) B::softcap(lg, cap);
    auto dlg = dh_last ? activation<B>(lg.shape()) : tensor_t<B>{};
    const double mean = Ops::cross_entropy(lg, lab, dh_last ? &dlg : nullptr);
    const double share = double(n) / double(n_all);  // a chunk's mean counts by its labels
    out.loss += mean * share;
    if (!dh_last) continue;
    if (cap > 0) Ops::softcap_backward(lg, cap, dlg, dlg);
    if (n != n_all) scale_in_own_precision<B>(dlg, share);  // only when the rows span several chunks
    auto d = d_all.slice(r0, r1);
    Ops::linear_backward(x, model.weights().embed, dlg, &d, nullptr, nullptr);
  }
  if (dh_last && n_all != rows) {
    std::int64_t at = 0;
    for (const auto& [r0, r1] : runs) {
      auto dst = d_normed.slice(r0, r1);
      B::copy(dst, d_all.slice(at, at + (r1 - r0)));
      at += r1 - r0;
    }
  }
  if (dh_last) {
    auto d = dh_last->view({rows, H});
    Ops::rms_norm_backward(flat, model.weights().final_norm, eps, d_normed, d, nullptr);
  }
  return out;
}

}  // namespace flas::train
