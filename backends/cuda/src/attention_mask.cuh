#pragma once
// The attention score of one (query, key) pair exactly as ScalarBackend computes it: q·k · scale, then
// the soft-cap, then the mask rule (nn::MaskRule: 0 hf_min, 1 flas_additive, 2 replace_neg1e4). Every
// attention kernel, forward and backward, goes through this one function, so they cannot disagree
// on the mask. `slope` is ∂score/∂(q·k·scale): the cap's 1 − tanh² where the score survives the mask,
// 0 where the rule replaced it by a constant.
#include <cfloat>

#include "kernels.hpp"

namespace flas::cuda_kernels {

struct MaskedScore {
  float score;
  float slope;
};

// b: batch row; qi: the query's key index (past + i when causal); j: the key.
__device__ __forceinline__ MaskedScore masked_score(const AttentionArgs& a, float dot, int b, std::int64_t qi,
                                                    std::int64_t j) {
  float s = dot * a.scale;
  float slope = 1.0f;
  if (a.softcap > 0.0f) {
    const float t = tanhf(s / a.softcap);
    s = a.softcap * t;
    slope = 1.0f - t * t;
  }
  const bool pad = a.key_valid && !a.key_valid[std::int64_t(b) * a.cap + j];
  const bool future = a.causal && j > qi;
  const bool outside = a.causal && a.window > 0 && qi - j >= a.window;
  switch (a.rule) {
    case 0:  // hf_min: finfo(f32).min for invisible keys
      if (pad || future || outside) {
        s = -FLT_MAX;
        slope = 0.0f;
      }
      break;
    case 1:  // flas_additive: −1e4 added per violated rule (the sum first, as the reference)
      s += (future ? -1e4f : 0.0f) + (pad ? -1e4f : 0.0f);
      break;
    default:  // replace_neg1e4
      if (pad || future) {
        s = -1e4f;
        slope = 0.0f;
      }
      break;
  }
  return {s, slope};
}

// Offsets of a query row [b, i, h, :] and of a key/value row [b, j, kvh, :].
__device__ __forceinline__ std::int64_t query_offset(const AttentionArgs& a, int b, int i, int h) {
  return ((std::int64_t(b) * a.Sq + i) * a.nH + h) * a.hd;
}
__device__ __forceinline__ std::int64_t key_offset(const AttentionArgs& a, int b, std::int64_t j, int kvh) {
  return ((std::int64_t(b) * a.cap + j) * a.nKV + kvh) * a.hd;
}

}  // namespace flas::cuda_kernels
