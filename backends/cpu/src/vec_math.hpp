#pragma once
// exp and tanh in f32 written branch-free, so that loops calling them (`#pragma omp simd`) vectorise
// for whatever ISA the unit is compiled for. libm's expf/tanhf are scalar calls: in attention softmax
// and the MLP's GELU they would cost more than the arithmetic around them.
// Accuracy: exp within 2 ulp over the range that matters for softmax; tanh within ~3e-7 relative
// (max absolute error ~6e-8), far inside the 1e-5 tolerance of the f32 reference.
#include <bit>
#include <cstdint>

namespace flas::cpu_detail {

// e^x for x in [-88, 88] (inputs outside are clamped: e^x then underflows to exactly 0 below −87.3,
// which is what softmax needs for −inf and for finfo(f32).min scores). NaN stays NaN.
#pragma omp declare simd
inline float fast_exp(float x) {
  constexpr float log2e = 1.44269504088896341f;
  constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // ln 2 split for exact n·ln2_hi
  constexpr float shifter = 12582912.0f;                           // 1.5·2^23: rounds to an integer
  const float below = x < -87.5f ? 0.0f : 1.0f;
  x = x < -88.0f ? -88.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float t = x * log2e + shifter;
  const float n = t - shifter;
  float r = x - n * ln2_hi;
  r = r - n * ln2_lo;
  // e^r on |r| <= ln2/2: Taylor to degree 7 (truncation < 1e-9 relative).
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n from the shifter's low mantissa bits (n in [−127, 127]; n = −127 gives 0, the underflow).
  const std::int32_t ni = std::bit_cast<std::int32_t>(t) - std::bit_cast<std::int32_t>(shifter);
  const float scale = std::bit_cast<float>((ni + 127) << 23);
  return p * scale * below;
}

// tanh(x): an odd Taylor polynomial near 0 (where 1 − 2/(e^2x + 1) would cancel), the exp form beyond.
#pragma omp declare simd
inline float fast_tanh(float x) {
  const float a = x < 0 ? -x : x;
  const float a2 = a * a;
  float p = 21844.0f / 6081075.0f;
  p = p * a2 - 1382.0f / 155925.0f;
  p = p * a2 + 62.0f / 2835.0f;
  p = p * a2 - 17.0f / 315.0f;
  p = p * a2 + 2.0f / 15.0f;
  p = p * a2 - 1.0f / 3.0f;
  const float small = a + a * a2 * p;
  const float large = 1.0f - 2.0f / (fast_exp(2.0f * a) + 1.0f);
  const float t = a < 0.25f ? small : large;
  return x < 0 ? -t : t;
}

}  // namespace flas::cpu_detail
