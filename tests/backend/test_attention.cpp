// attention() against the f64 oracle over the full option space: the three mask rules × causal or not
// × sliding window × soft-cap × key padding patterns (none, scattered, left padding, a batch row with
// every key padded), for prefill, decode and chunked shapes with GQA groups 1, 2 and 4, kv_len below
// the cache capacity, and head sizes that are and are not multiples of the SIMD width.
#include <vector>

#include "attention_sweep.hpp"

namespace flas::conformance {
namespace {

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

template <class B>
void check_attention(const AttnShape& s, const nn::AttentionParams& p) {
  const Tensor q = random_tensor({s.B, s.Sq, s.nH, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor k = random_tensor({s.B, s.cap, s.nKV, s.hd}, DType::F32, -2.0f, 2.0f);
  const Tensor v = random_tensor({s.B, s.cap, s.nKV, s.hd});
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  Tensor out = poisoned(q.shape());
  B::attention(q, k, v, out, p);
  compare_attention_rows(s, p, ref, out);
}

TEST_CASE_TEMPLATE("attention matches the f64 reference for every mask option", B, FLAS_CONFORMANCE_BACKENDS) {
  sweep_attention_options(kShapes,
                          [](const AttnShape& s, const nn::AttentionParams& p) { check_attention<B>(s, p); });
}

TEST_CASE_TEMPLATE("cross-attention: more queries than keys, not causal", B, FLAS_CONFORMANCE_BACKENDS) {
  sweep_cross_attention_options(
      [](const AttnShape& s, const nn::AttentionParams& p) { check_attention<B>(s, p); });
}

TEST_CASE_TEMPLATE("attention: an all-padding row stays finite under hf_min (uniform weights)", B, FLAS_CONFORMANCE_BACKENDS) {
  const AttnShape s{2, 9, 9, 9, 2, 1, 16};
  std::vector<std::uint8_t> valid(std::size_t(s.B * s.cap), 1);
  for (std::int64_t j = 0; j < s.cap; ++j) valid[std::size_t(j)] = 0;  // batch row 0: every key padding
  nn::AttentionParams p;
  p.scale = 0.25f;
  p.softcap = 50.0f;
  p.key_valid = valid.data();
  check_attention<B>(s, p);
}

TEST_CASE_TEMPLATE("attention may write over q", B, FLAS_CONFORMANCE_BACKENDS) {
  Tensor q = random_tensor({1, 6, 2, 32});
  const Tensor k = random_tensor({1, 6, 2, 32}), v = random_tensor({1, 6, 2, 32});
  nn::AttentionParams p;
  p.scale = 0.2f;
  Tensor ref = Tensor::empty(q.shape(), DType::F64);
  Ref::attention(to_f64(q), to_f64(k), to_f64(v), ref, p);
  B::attention(q, k, v, q, p);
  FLAS_CHECK_CLOSE(q, ref, kReduction);
}

TEST_CASE_TEMPLATE("attention rejects shapes that do not fit", B, FLAS_CONFORMANCE_BACKENDS) {
  const Tensor q = random_tensor({1, 4, 3, 8}), k = random_tensor({1, 4, 2, 8});  // 3 heads over 2 kv heads
  Tensor out = poisoned(q.shape());
  CHECK_THROWS_AS(B::attention(q, k, k, out, {}), Error);
  const Tensor k_short = random_tensor({1, 3, 3, 8});  // fewer keys than queries
  CHECK_THROWS_AS(B::attention(q, k_short, k_short, out, {}), Error);
}

}  // namespace
}  // namespace flas::conformance
