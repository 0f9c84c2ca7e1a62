// ScalarBackend<float>'s backward ops against ScalarBackend<double>'s on identical (f32-exact) inputs:
// the f32 instantiation computes the same VJPs, its parameter gradients are F32, and every "write"
// output is fully written (outputs start as NaN).
#include <vector>

#include "backward_test_support.hpp"

namespace flas::backward_test {
namespace {

Tensor f32(const Tensor& t) { return convert(t, DType::F32); }

TEST_CASE("f32 backward: linear, rms_norm, add_gated with F32 and BF16 weights") {
  Rng rng(301);
  for (DType wdt : {DType::F32, DType::BF16}) {
    const std::string weight_dtype(dtype_name(wdt));
    CAPTURE(weight_dtype);
    {
      const Tensor x = rng.uniform({6, 9}), w = rng.uniform({5, 9}, -1, 1, wdt), dy = rng.uniform({6, 5});
      Tensor dx64 = poisoned({6, 9}), dw64 = zeros({5, 9}, DType::F64), db64 = zeros({5}, DType::F64);
      Tensor dx32 = poisoned({6, 9}, DType::F32), dw32 = zeros({5, 9}), db32 = zeros({5});
      Ops64::linear_backward(x, w, dy, &dx64, &dw64, &db64);
      Ops32::linear_backward(f32(x), w, f32(dy), &dx32, &dw32, &db32);
      check_close("f32 linear dx", dx32, dx64, kF32Bound);
      check_close("f32 linear dw", dw32, dw64, kF32Bound);
      check_close("f32 linear db", db32, db64, kF32Bound);
      Tensor f64_grad = zeros({5, 9}, DType::F64);
      CHECK_THROWS_AS(Ops32::linear_backward(f32(x), w, f32(dy), nullptr, &f64_grad, nullptr), Error);
    }
    {
      const Tensor x = rng.uniform({4, 33}, -3, 3), w = rng.uniform({33}, -0.5, 0.5, wdt), dy = rng.uniform({4, 33});
      Tensor dx64 = poisoned({4, 33}), dw64 = zeros({33}, DType::F64);
      Tensor dx32 = poisoned({4, 33}, DType::F32), dw32 = zeros({33});
      Ops64::rms_norm_backward(x, w, 1e-6f, dy, dx64, &dw64);
      Ops32::rms_norm_backward(f32(x), w, 1e-6f, f32(dy), dx32, &dw32);
      check_close("f32 rms_norm dx", dx32, dx64, kF32Bound);
      check_close("f32 rms_norm dw", dw32, dw64, kF32Bound);
    }
    {
      const Tensor g = rng.uniform({17}, -1, 1, wdt), x = rng.uniform({3, 17}), dy = rng.uniform({3, 17});
      Tensor dx64 = poisoned({3, 17}), dg64 = zeros({17}, DType::F64);
      Tensor dx32 = poisoned({3, 17}, DType::F32), dg32 = zeros({17});
      Ops64::add_gated_backward(g, x, dy, dx64, &dg64);
      Ops32::add_gated_backward(g, f32(x), f32(dy), dx32, &dg32);
      check_close("f32 add_gated dx", dx32, dx64, kF32Bound);
      check_close("f32 add_gated dg", dg32, dg64, kF32Bound);
    }
  }
}

TEST_CASE("f32 backward: rope, gelu_tanh_mul, softcap, silu, cross_entropy") {
  Rng rng(302);
  {
    Tensor positions = Tensor::empty({2, 3}, DType::I64);
    for (std::int64_t i = 0; i < 6; ++i) positions.data<std::int64_t>()[i] = rng.integer(0, 8000);
    Tensor inv_freq = Tensor::empty({4}, DType::F32);
    for (std::int64_t i = 0; i < 4; ++i) inv_freq.data<float>()[i] = float(std::pow(10000.0, -2.0 * double(i) / 8.0));
    const Tensor dy = rng.uniform({2, 3, 2, 8});
    Tensor dx64 = clone(dy), dx32 = f32(dy);
    Ops64::rope_backward(dx64, positions, inv_freq);
    Ops32::rope_backward(dx32, positions, inv_freq);
    check_close("f32 rope dx", dx32, dx64, kF32Bound);
  }
  const Shape s{5, 13};
  {
    const Tensor gate = rng.uniform(s, -4, 4), up = rng.uniform(s, -2, 2), dout = rng.uniform(s);
    Tensor dg64 = poisoned(s), du64 = poisoned(s), dg32 = poisoned(s, DType::F32), du32 = poisoned(s, DType::F32);
    Ops64::gelu_tanh_mul_backward(gate, up, dout, dg64, du64);
    Ops32::gelu_tanh_mul_backward(f32(gate), f32(up), f32(dout), dg32, du32);
    check_close("f32 gelu_tanh_mul dgate", dg32, dg64, kF32Bound);
    check_close("f32 gelu_tanh_mul dup", du32, du64, kF32Bound);
  }
  {
    Tensor capped = rng.uniform(s, -6, 6);
    F64::softcap(capped, 1.5f);
    const Tensor y = convert(f32(capped), DType::F64);  // identical inputs for both runs
    const Tensor dy = rng.uniform(s);
    Tensor dx64 = poisoned(s), dx32 = poisoned(s, DType::F32);
    Ops64::softcap_backward(y, 1.5f, dy, dx64);
    Ops32::softcap_backward(f32(y), 1.5f, f32(dy), dx32);
    check_close("f32 softcap dx", dx32, dx64, kF32Bound);
  }
  {
    const Tensor x = rng.uniform(s, -6, 6), dy = rng.uniform(s);
    Tensor dx64 = poisoned(s), dx32 = poisoned(s, DType::F32);
    Ops64::silu_backward(x, dy, dx64);
    Ops32::silu_backward(f32(x), f32(dy), dx32);
    check_close("f32 silu dx", dx32, dx64, kF32Bound);
  }
  {
    const Tensor logits = rng.uniform({6, 50}, -30, 30);
    Tensor labels = Tensor::empty({6}, DType::I64);
    for (std::int64_t m = 0; m < 6; ++m) labels.data<std::int64_t>()[m] = m == 2 ? ignore_label : rng.integer(0, 49);
    Tensor d64 = poisoned({6, 50}), d32 = poisoned({6, 50}, DType::F32);
    const double loss64 = Ops64::cross_entropy(logits, labels, &d64);
    const double loss32 = Ops32::cross_entropy(f32(logits), labels, &d32);
    CHECK(loss32 == doctest::Approx(loss64).epsilon(kF32Bound));
    check_close("f32 cross_entropy dlogits", d32, d64, kF32Bound);
  }
}

// Two padding patterns: holes that leave every query some real key, and left padding that masks the
// first queries of row 0 completely; the latter under flas_additive is held to kF32AtMinus1e4.
TEST_CASE("f32 backward: attention for every mask rule, soft-cap on and off") {
  Rng rng(303);
  struct Layout {
    std::int64_t Sq, capacity, kv_len;
    bool causal;
    std::int64_t window;
  };
  const Layout layouts[] = {{6, 6, -1, true, 0}, {3, 9, 7, true, 3}, {7, 6, 4, false, 0}};
  for (const Layout& l : layouts)
    for (bool left_padding : {false, true})
      for (nn::MaskRule rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
        for (float softcap : {0.0f, 1.5f}) {
          CAPTURE(l.Sq);
          CAPTURE(l.kv_len);
          CAPTURE(left_padding);
          CAPTURE(int(rule));
          CAPTURE(softcap);
          const std::int64_t B = 2, nH = 4, nKV = 2, hd = 8;
          std::vector<std::uint8_t> valid(std::size_t(B * l.capacity), 1);
          if (left_padding) valid[0] = valid[1] = 0;
          else valid[2] = 0;
          valid[std::size_t(l.capacity + 1)] = 0;
          nn::AttentionParams p;
          p.scale = float(1.0 / std::sqrt(double(hd)));
          p.softcap = softcap;
          p.rule = rule;
          p.causal = l.causal;
          p.window = l.window;
          p.kv_len = l.kv_len;
          p.key_valid = valid.data();
          const Shape q_shape{B, l.Sq, nH, hd}, kv_shape{B, l.capacity, nKV, hd};
          const Tensor q = rng.uniform(q_shape, -2, 2), k = rng.uniform(kv_shape, -2, 2), v = rng.uniform(kv_shape),
                       dout = rng.uniform(q_shape);
          Tensor out64 = Tensor::empty(q_shape, DType::F64), out32 = Tensor::empty(q_shape, DType::F32);
          F64::attention(q, k, v, out64, p);
          F32::attention(f32(q), f32(k), f32(v), out32, p);
          Tensor dq64 = poisoned(q_shape), dk64 = zeros(kv_shape, DType::F64), dv64 = zeros(kv_shape, DType::F64);
          Tensor dq32 = poisoned(q_shape, DType::F32), dk32 = zeros(kv_shape), dv32 = zeros(kv_shape);
          Ops64::attention_backward(q, k, v, out64, dout, p, dq64, dk64, dv64);
          Ops32::attention_backward(f32(q), f32(k), f32(v), out32, f32(dout), p, dq32, dk32, dv32);
          const bool near_minus_1e4 = left_padding && l.causal && rule == nn::MaskRule::flas_additive;
          const double bound = near_minus_1e4 ? kF32AtMinus1e4 : kF32Bound;
          const std::string tag = near_minus_1e4 ? " (flas_additive, fully masked rows)" : "";
          check_close("f32 attention dq" + tag, dq32, dq64, bound);
          check_close("f32 attention dk" + tag, dk32, dk64, bound);
          check_close("f32 attention dv" + tag, dv32, dv64, bound);
        }
}

}  // namespace
}  // namespace flas::backward_test
