#pragma once
// The FLAS time embedding: τ(t) = [sin(t·ω_k), cos(t·ω_k)], ω_k = exp(−ln(1e4)·k/64), k = 0..63, in f32
// as the reference computes it, then e(t) = W2·SiLU(W1·τ + b1) + b2. One t per row.
#include <cmath>
#include <span>

#include "flas/core/backend.hpp"
#include "flas/nn/elementwise.hpp"

namespace flas::condition {

inline constexpr std::int64_t time_frequency_dim = 128;

// τ(t) rows [B, 128] in f32, exactly as the reference's float32 arithmetic orders it.
inline Tensor sinusoidal_time_features(std::span<const float> t) {
  const std::int64_t half = time_frequency_dim / 2;
  Tensor out = Tensor::empty({std::int64_t(t.size()), time_frequency_dim}, DType::F32);
  const float neg_log = float(-std::log(10000.0));
  for (std::size_t b = 0; b < t.size(); ++b) {
    float* row = out.data<float>() + std::int64_t(b) * time_frequency_dim;
    for (std::int64_t k = 0; k < half; ++k) {
      const float omega = std::exp(neg_log * float(k) / float(half));
      const float arg = t[b] * omega;
      row[k] = std::sin(arg);
      row[k + half] = std::cos(arg);
    }
  }
  return out;
}

struct TimeEmbeddingWeights {
  Tensor w1, b1, w2, b2;  // time_embed.mlp.0.{weight,bias} [H,128],[H]; time_embed.mlp.2.{weight,bias} [H,H],[H]
};

template <Backend B>
tensor_t<B> time_embedding(const TimeEmbeddingWeights& w, std::span<const float> t) {
  const Tensor features = sinusoidal_time_features(t);
  auto x = tensor_t<B>::empty(features.shape(), B::activation_dtype);
  if (B::activation_dtype == DType::F32) B::copy(x, features);
  else B::copy(x, convert(features, B::activation_dtype));
  const std::int64_t H = w.w1.dim(0), Bn = std::int64_t(t.size());
  auto hidden = tensor_t<B>::empty({Bn, H}, B::activation_dtype);
  B::linear(x, w.w1, &w.b1, hidden);
  nn::silu<B>(hidden);
  auto e = tensor_t<B>::empty({Bn, H}, B::activation_dtype);
  B::linear(hidden, w.w2, &w.b2, e);
  return e;
}

}  // namespace flas::condition
