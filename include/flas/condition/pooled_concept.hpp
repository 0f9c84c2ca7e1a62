#pragma once
// Pooled concept conditioning (an ablation of cross-attention): the mean of the concept states over
// real tokens, one vector per row.
#include "flas/condition/concept_encoder.hpp"

namespace flas::condition {

template <Backend B>
tensor_t<B> masked_mean(const EncodedConcepts<B>& c) {
  static_assert(std::is_same_v<typename B::space, HostSpace>, "masked_mean reads host memory");
  const std::int64_t Bn = c.rows(), L = c.length(), H = c.hidden.dim(2);
  auto out = tensor_t<B>::empty({Bn, H}, B::activation_dtype);
  B::fill(out, 0.0f);
  for (std::int64_t b = 0; b < Bn; ++b) {
    std::int64_t n = 0;
    auto row = out[b];
    for (std::int64_t i = 0; i < L; ++i)
      if (c.mask.template data<std::uint8_t>()[b * L + i]) {
        B::add(row, c.hidden[b][i]);
        ++n;
      }
    FLAS_CHECK(n > 0, "pooled concept: row ", b, " has no real concept token");
    B::scale(row, 1.0f / float(n));
  }
  return out;
}

}  // namespace flas::condition
