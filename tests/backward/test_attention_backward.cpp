// attention_backward of ScalarBackend<double> against central finite differences of L = Σ r ⊙ out, for
// every mask rule × soft-cap on/off × GQA groups 1/2/4, on layouts that cover causal self-attention,
// left and right padding (fully masked query rows included), decode with a sliding window and a cache
// larger than kv_len, non-causal cross-attention with Sq > Sk, and a non-causal square case.
#include <vector>

#include "attention_cases.hpp"
#include "backward_test_support.hpp"

namespace flas::backward_test {
namespace {

TEST_CASE("attention_backward: dq, dk, dv against finite differences for every mask rule and layout") {
  Rng rng(101);
  for (const Layout& l : kSmallLayouts)
    for (std::int64_t group : {1, 2, 4})
      for (nn::MaskRule rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
        for (float softcap : {0.0f, 1.5f}) {
          const AttentionCase c(l, group, rule, softcap);
          INFO(c.label);
          const auto& [q_shape, kv_shape, p] = std::tie(c.q_shape, c.kv_shape, c.p);
          const std::string rule_str = rule_name(rule);

          Tensor q = rng.uniform(q_shape, -2, 2), k = rng.uniform(kv_shape, -2, 2), v = rng.uniform(kv_shape);
          const Tensor r = rng.uniform(q_shape);
          auto objective = [&] {
            Tensor out = Tensor::empty(q_shape, DType::F64);
            F64::attention(q, k, v, out, p);
            return weighted_sum(out, r);
          };
          Tensor out = Tensor::empty(q_shape, DType::F64);
          F64::attention(q, k, v, out, p);
          const Tensor dk0 = rng.uniform(kv_shape), dv0 = rng.uniform(kv_shape);
          Tensor dq = poisoned(q_shape), dk = clone(dk0), dv = clone(dv0);
          Ops64::attention_backward(q, k, v, out, r, p, dq, dk, dv);

          // Under flas_additive a fully masked row's scores sit near −1e4, where a double's spacing is
          // 1.8e-12: a 1e-6 step would resolve them only to ~1e-6, so that rule takes a 1e-5 step.
          const double step = rule == nn::MaskRule::flas_additive ? 1e-5 : 1e-6;
          check_close("attention dq, " + rule_str, dq, fd_gradient(q, objective, step), kFdBound);
          check_close("attention dk (accumulated), " + rule_str, added(dk, dk0), fd_gradient(k, objective, step), kFdBound);
          check_close("attention dv (accumulated), " + rule_str, added(dv, dv0), fd_gradient(v, objective, step), kFdBound);

          // Cache rows at and beyond kv_len are not touched.
          if (l.kv_len >= 0)
            for (std::int64_t b = 0; b < l.B; ++b) {
              const Tensor unused_dk = dk[b].slice(l.kv_len, l.capacity), unused_dk0 = dk0[b].slice(l.kv_len, l.capacity);
              const Tensor unused_dv = dv[b].slice(l.kv_len, l.capacity), unused_dv0 = dv0[b].slice(l.kv_len, l.capacity);
              CHECK(testing::max_rel_diff(unused_dk, unused_dk0) == 0);
              CHECK(testing::max_rel_diff(unused_dv, unused_dv0) == 0);
            }
        }
}

// A query that sees only padding: replaced masks make every score a constant (no gradient to q), while
// flas_additive's −1e4 terms are added and the scores still depend on q.
TEST_CASE("attention_backward: a fully masked query row gets dq = 0 only under replacing mask rules") {
  Rng rng(102);
  const Shape q_shape{1, 3, 2, 4}, kv_shape{1, 3, 1, 4};
  const Tensor q = rng.uniform(q_shape, -2, 2), k = rng.uniform(kv_shape, -2, 2), v = rng.uniform(kv_shape),
               r = rng.uniform(q_shape);
  const std::uint8_t valid[] = {0, 1, 1};  // query 0 sees key 0 only, and it is padding
  for (nn::MaskRule rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4}) {
    const std::string rule_str = rule_name(rule);
    CAPTURE(rule_str);
    nn::AttentionParams p;
    p.scale = 0.5f;
    p.softcap = 50.0f;
    p.rule = rule;
    p.key_valid = valid;
    Tensor out = Tensor::empty(q_shape, DType::F64);
    F64::attention(q, k, v, out, p);
    Tensor dq = poisoned(q_shape), dk = zeros(kv_shape, DType::F64), dv = zeros(kv_shape, DType::F64);
    Ops64::attention_backward(q, k, v, out, r, p, dq, dk, dv);
    double row0 = 0;
    for (std::int64_t i = 0; i < 2 * 4; ++i) row0 = std::max(row0, std::abs(dq.data<double>()[i]));
    if (rule == nn::MaskRule::flas_additive) CHECK(row0 > 1e-3);
    else CHECK(row0 == 0);
  }
}

}  // namespace
}  // namespace flas::backward_test
