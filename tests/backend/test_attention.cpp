// attention() against the f64 oracle over the full option space: the three mask rules × causal or not
// × sliding window × soft-cap × key padding patterns (none, scattered, left padding, a batch row with
// every key padded), for prefill, decode and chunked shapes with GQA groups 1, 2 and 4, kv_len below
// the cache capacity, and head sizes that are and are not multiples of the SIMD width.
#include <vector>

#include "conformance.hpp"

namespace flas::conformance {
namespace {

struct AttnShape {
  std::int64_t B, Sq, Sk, cap, nH, nKV, hd;
};

// Sk > 64 spans several key blocks; Sq·group > 128 several query blocks (work units); Sk < cap
// exercises kv_len.
constexpr AttnShape kShapes[] = {
    {2, 70, 70, 70, 4, 4, 24},    // prefill, group 1, hd not a multiple of 16
    {1, 140, 140, 140, 4, 1, 16}, // prefill, group 4: five work units of 32 queries
    {1, 37, 37, 40, 4, 2, 64},    // prefill, group 2, kv_len < capacity
    {2, 1, 75, 96, 8, 2, 32},     // decode, group 4
    {1, 1, 130, 130, 4, 2, 64},   // decode, group 2 (two rows per work unit)
    {1, 3, 70, 80, 2, 2, 48},     // three-token step, group 1 (three rows per work unit)
    {1, 5, 133, 140, 2, 1, 16},   // chunked prefill after a cache, group 2
    {1, 20, 20, 20, 2, 1, 256},   // Gemma-2 head size
};

enum class Padding { none, scattered, left, all_in_row0 };

std::vector<std::uint8_t> key_valid(Padding pad, std::int64_t B, std::int64_t cap) {
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
bool has_visible_key(const nn::AttentionParams& p, const std::uint8_t* valid, std::int64_t b, std::int64_t cap,
                     std::int64_t Sk, std::int64_t qi) {
  for (std::int64_t j = 0; j < Sk; ++j) {
    const bool pad = valid && !valid[b * cap + j];
    const bool future = p.causal && j > qi;
    const bool outside = p.rule == nn::MaskRule::hf_min && p.causal && p.window > 0 && qi - j >= p.window;
    if (!pad && !future && !outside) return true;
  }
  return false;
}

template <class B>
void check_attention(const AttnShape& s, const nn::AttentionParams& p) {
  const Tensor q = random_tensor({s.B, s.Sq, s.nH, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor k = random_tensor({s.B, s.cap, s.nKV, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor v = random_tensor({s.B, s.cap, s.nKV, s.hd});
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  Tensor out = poisoned(q.shape());
  B::attention(q, k, v, out, p);
  REQUIRE(all_finite(out));

  // Rows with a visible key must match to f32 accuracy; rows without one (possible only under the
  // −1e4 additive rule, where the result then depends on f32-rounded s − 1e4) to kMaskedRowNeg1e4.
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

TEST_CASE_TEMPLATE("attention matches the f64 reference for every mask option", B, CpuBackend,
                   ScalarBackend<float>) {
  for (const auto& s : kShapes)
    for (auto rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
      for (bool causal : {true, false})
        for (std::int64_t window : {0, 7})
          for (float softcap : {0.0f, 50.0f})
            for (auto pad : {Padding::none, Padding::scattered, Padding::left, Padding::all_in_row0}) {
              const auto valid = key_valid(pad, s.B, s.cap);
              nn::AttentionParams p;
              p.scale = 1.0f / std::sqrt(float(s.hd));
              p.softcap = softcap;
              p.rule = rule;
              p.causal = causal;
              p.window = window;
              p.kv_len = s.Sk == s.cap ? -1 : s.Sk;
              p.key_valid = pad == Padding::none ? nullptr : valid.data();
              CAPTURE(s.Sq);
              CAPTURE(s.Sk);
              CAPTURE(s.nH / s.nKV);
              CAPTURE(s.hd);
              CAPTURE(int(rule));
              CAPTURE(causal);
              CAPTURE(window);
              CAPTURE(softcap);
              CAPTURE(int(pad));
              check_attention<B>(s, p);
            }
}

TEST_CASE_TEMPLATE("cross-attention: more queries than keys, not causal", B, CpuBackend, ScalarBackend<float>) {
  // FLAS's concept cross-attention: every prompt position against a short, padded concept.
  for (const AttnShape& s : {AttnShape{2, 70, 9, 12, 4, 2, 32}, AttnShape{1, 3, 66, 66, 2, 1, 24}})
    for (auto rule : {nn::MaskRule::replace_neg1e4, nn::MaskRule::hf_min, nn::MaskRule::flas_additive})
      for (auto pad : {Padding::none, Padding::scattered, Padding::all_in_row0}) {
        const auto valid = key_valid(pad, s.B, s.cap);
        nn::AttentionParams p;
        p.scale = 1.0f / std::sqrt(float(s.hd));
        p.softcap = 50.0f;
        p.rule = rule;
        p.causal = false;
        p.window = 4;  // ignored without causal
        p.kv_len = s.Sk;
        p.key_valid = pad == Padding::none ? nullptr : valid.data();
        CAPTURE(s.Sq);
        CAPTURE(int(rule));
        CAPTURE(int(pad));
        check_attention<B>(s, p);
      }
}

TEST_CASE_TEMPLATE("attention: an all-padding row stays finite under hf_min (uniform weights)", B, CpuBackend,
                   ScalarBackend<float>) {
  const AttnShape s{2, 9, 9, 9, 2, 1, 16};
  std::vector<std::uint8_t> valid(std::size_t(s.B * s.cap), 1);
  for (std::int64_t j = 0; j < s.cap; ++j) valid[std::size_t(j)] = 0;  // batch row 0: every key padding
  nn::AttentionParams p;
  p.scale = 0.25f;
  p.softcap = 50.0f;
  p.key_valid = valid.data();
  check_attention<B>(s, p);
}

TEST_CASE_TEMPLATE("attention may write over q", B, CpuBackend, ScalarBackend<float>) {
  Tensor q = random_tensor({1, 6, 2, 32});
  const Tensor k = random_tensor({1, 6, 2, 32}), v = random_tensor({1, 6, 2, 32});
  nn::AttentionParams p;
  p.scale = 0.2f;
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  B::attention(q, k, v, q, p);
  FLAS_CHECK_CLOSE(q, ref, kReduction);
}

TEST_CASE("attention rejects shapes that do not fit") {
  const Tensor q = random_tensor({1, 4, 3, 8}), k = random_tensor({1, 4, 2, 8});  // 3 heads over 2 kv heads
  Tensor out = poisoned(q.shape());
  CHECK_THROWS_AS(CpuBackend::attention(q, k, k, out, {}), Error);
  const Tensor k_short = random_tensor({1, 3, 3, 8});  // fewer keys than queries
  CHECK_THROWS_AS(CpuBackend::attention(q, k_short, k_short, out, {}), Error);
}

}  // namespace
}  // namespace flas::conformance
