#pragma once
// RoPE inverse frequencies, computed in f32 exactly as HF does: 1 / θ^(2i/hd).
#include <cmath>

#include "flas/core/tensor.hpp"

namespace flas::gemma2 {

inline Tensor rope_inv_freq(double theta, std::int64_t head_dim) {
  Tensor f = Tensor::empty({head_dim / 2}, DType::F32);
  float* p = f.data<float>();
  for (std::int64_t i = 0; i < head_dim / 2; ++i) {
    const float exponent = float(2 * i) / float(head_dim);
    p[i] = 1.0f / std::pow(float(theta), exponent);
  }
  return f;
}

}  // namespace flas::gemma2
