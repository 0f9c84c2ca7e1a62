#pragma once
// The attention option space every backend's attention() is checked over (the CPU and scalar suite, the
// CUDA suite): shapes, key padding patterns, the sweep of mask rules × causal × window × soft-cap ×
// padding, and the row-wise comparison with the f64 oracle — f32 accuracy on rows with a visible key,
// kMaskedRowNeg1e4 on rows whose every key is masked under the −1e4 additive rule.
#include <cmath>
#include <vector>

#include "conformance.hpp"

namespace flas::conformance {

struct AttnShape {
  std::int64_t B, Sq, Sk, cap, nH, nKV, hd;
};

enum class Padding { none, scattered, left, all_in_row0 };

inline std::vector<std::uint8_t> key_valid(Padding pad, std::int64_t B, std::int64_t cap) {
  std::vector<std::uint8_t> valid(std::size_t(B * cap), 1);
  std::bernoulli_distribution keep(0.75);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < cap; ++j) {
      auto& v = valid[std::size_t(b * cap + j)];
      switch (pad) {
        case Padding::none: break;
        case Padding::scattered: v = keep(rng()) ? 1 : 0; break;
        case Padding::left: v = (b == 0 && j < 10) ? 0 : 1; break;
        case Padding::all_in_row0: v = b == 0 ? 0 : (keep(rng()) ? 1 : 0); break;
      }
    }
  return valid;
}

// Whether query i of batch row b sees at least one key under the rule (the reference's visibility).
inline bool has_visible_key(const nn::AttentionParams& p, const std::uint8_t* valid, std::int64_t b, std::int64_t cap,
                            std::int64_t Sk, std::int64_t qi) {
  for (std::int64_t j = 0; j < Sk; ++j) {
    const bool pad = valid && !valid[b * cap + j];
    const bool future = p.causal && j > qi;
    const bool outside = p.rule == nn::MaskRule::hf_min && p.causal && p.window > 0 && qi - j >= p.window;
    if (!pad && !future && !outside) return true;
  }
  return false;
}

// out (F32, host) against the oracle's ref (F64) for the shape and parameters.
inline void compare_attention_rows(const AttnShape& s, const nn::AttentionParams& p, const Tensor& ref,
                                   const Tensor& out) {
  REQUIRE(all_finite(out));
  double err_seen = 0, err_unseen = 0, scale = 0;
  for (std::int64_t b = 0; b < s.B; ++b)
    for (std::int64_t i = 0; i < s.Sq; ++i) {
      const bool seen = p.rule != nn::MaskRule::flas_additive ||
                        has_visible_key(p, p.key_valid, b, s.cap, s.Sk, p.causal ? s.Sk - s.Sq + i : i);
      for (std::int64_t e = 0; e < s.nH * s.hd; ++e) {
        const std::int64_t idx = (b * s.Sq + i) * s.nH * s.hd + e;
        const double r = ref.data<double>()[idx], g = out.data<float>()[idx];
        (seen ? err_seen : err_unseen) = std::max(seen ? err_seen : err_unseen, std::abs(g - r));
        scale = std::max(scale, std::abs(r));
      }
    }
  CHECK(err_seen / scale <= kReduction);
  CHECK(err_unseen / scale <= kMaskedRowNeg1e4);
}

inline nn::AttentionParams attention_params(const AttnShape& s, nn::MaskRule rule, bool causal, std::int64_t window,
                                            float softcap, const std::vector<std::uint8_t>* valid) {
  nn::AttentionParams p;
  p.scale = 1.0f / std::sqrt(float(s.hd));
  p.softcap = softcap;
  p.rule = rule;
  p.causal = causal;
  p.window = window;
  p.kv_len = s.Sk == s.cap ? -1 : s.Sk;
  p.key_valid = valid ? valid->data() : nullptr;
  return p;
}

// check(s, p) for every shape × rule × causal × window {0, 7} × soft-cap {0, 50} × padding pattern.
template <class Shapes, class Check>
void sweep_attention_options(const Shapes& shapes, Check&& check) {
  for (const AttnShape& s : shapes)
    for (auto rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
      for (bool causal : {true, false})
        for (std::int64_t window : {0, 7})
          for (float softcap : {0.0f, 50.0f})
            for (auto pad : {Padding::none, Padding::scattered, Padding::left, Padding::all_in_row0}) {
              const auto valid = key_valid(pad, s.B, s.cap);
              CAPTURE(s.Sq);
              CAPTURE(s.Sk);
              CAPTURE(s.nH / s.nKV);
              CAPTURE(s.hd);
              CAPTURE(int(rule));
              CAPTURE(causal);
              CAPTURE(window);
              CAPTURE(softcap);
              CAPTURE(int(pad));
              check(s, attention_params(s, rule, causal, window, softcap, pad == Padding::none ? nullptr : &valid));
            }
}

// FLAS's concept cross-attention: every prompt position against a short, padded concept; not causal
// (the window of 4 must be ignored), soft-capped.
template <class Check>
void sweep_cross_attention_options(Check&& check) {
  for (const AttnShape& s : {AttnShape{2, 70, 9, 12, 4, 2, 32}, AttnShape{1, 3, 66, 66, 2, 1, 24}})
    for (auto rule : {nn::MaskRule::replace_neg1e4, nn::MaskRule::hf_min, nn::MaskRule::flas_additive})
      for (auto pad : {Padding::none, Padding::scattered, Padding::all_in_row0}) {
        const auto valid = key_valid(pad, s.B, s.cap);
        nn::AttentionParams p = attention_params(s, rule, false, 4, 50.0f, pad == Padding::none ? nullptr : &valid);
        p.kv_len = s.Sk;
        CAPTURE(s.Sq);
        CAPTURE(int(rule));
        CAPTURE(int(pad));
        check(s, p);
      }
}

}  // namespace flas::conformance
