#pragma once
// Part of the op set (core/backend.hpp, core/backward.hpp), so it lives in core; the namespace stays
// flas::nn, where every model and field already names it.
// What an attention call needs beyond q, k, v: scale, soft-cap and the mask rule. Three mask rules
// exist in Gemma-2 + FLAS and they are not interchangeable (SPEC.md):
//  - hf_min:          invisible entries become finfo(f32).min (HF's additive mask; never NaN).
//  - flas_additive:   −1e4 added per violated rule (causal, padding key): an entry can reach −2e4.
//  - replace_neg1e4:  masked keys are replaced by −1e4 (FLAS cross-attention's masked_fill).
// All are applied after the soft-cap.
#include <cstdint>
#include <limits>

namespace flas::nn {

enum class MaskRule : std::uint8_t { hf_min, flas_additive, replace_neg1e4 };

struct AttentionParams {
  float scale = 1.0f;          // multiplies q·k before the cap
  float softcap = 0.0f;        // 0: no cap; else cap·tanh(s/cap)
  MaskRule rule = MaskRule::hf_min;
  bool causal = true;          // query i (at key index past + i) sees keys j <= past + i
  std::int64_t window = 0;     // sliding window (0: none): also requires (past + i) − j < window
  std::int64_t kv_len = -1;    // keys in use (−1: all k.dim(1)); k/v may be a larger cache
  const std::uint8_t* key_valid = nullptr;  // [B, k.dim(1)] row-major, 1 = real key; nullptr: all real
};

inline constexpr float hf_mask_value = std::numeric_limits<float>::lowest();
inline constexpr float flas_mask_value = -1e4f;

}  // namespace flas::nn
