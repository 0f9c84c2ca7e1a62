// The CPU backend's backward ops against the f64 oracle (ScalarBackend<double>, itself checked against
// finite differences) on identical f32-exact inputs, held to the bound ScalarBackend<float> meets
// (kF32Bound): linear on odd shapes, several bf16 tiles and in place; attention over every layout of
// the finite-difference test plus larger ones (several key and row blocks, hd off the vector width,
// windows, padding, chunked prefill, cross-attention) × GQA groups × mask rules × soft-caps; the
// element-wise VJPs above and below the threading threshold, in place where the op set allows it.
#include <array>
#include <string>
#include <vector>

#include "attention_cases.hpp"
#include "backward_test_support.hpp"
#include "flas/backends/cpu_backward.hpp"
#if defined(FLAS_TEST_KOKKOS)  // tests/kokkos: the same cases for the Kokkos backend
#include "flas/backends/kokkos_backward.hpp"
#endif

namespace flas::backward_test {
namespace {

#if defined(FLAS_TEST_KOKKOS)
using Fwd = KokkosBackend<>;
#else
using Fwd = CpuBackend;
#endif
using Cpu = BackwardOps<Fwd>;

Tensor f32(const Tensor& t) { return convert(t, DType::F32); }

TEST_CASE("CPU linear backward: dx, dW and db accumulated, f32 and bf16 weights, in place") {
  Rng rng(401);
  // The last two span several bf16 tiles (128 columns of dx × 1152 rows of W) in both directions.
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{1, 7, 5}, {3, 33, 17}, {40, 64, 96}, {129, 20, 31},
                         {37, 1300, 200}, {70, 2400, 130}}) {
    for (DType wt : {DType::F32, DType::BF16}) {
      const std::string shape = std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K);
      const std::string weight_dtype(dtype_name(wt));
      CAPTURE(shape);
      CAPTURE(weight_dtype);
      const Tensor x = rng.uniform({M, K}), dy = rng.uniform({M, N}), w = rng.uniform({N, K}, -1, 1, wt);
      const Tensor dw0 = rng.uniform({N, K}), db0 = rng.uniform({N});
      Tensor dx64 = poisoned({M, K}), dw64 = clone(dw0), db64 = clone(db0);
      Tensor dx = poisoned({M, K}, DType::F32), dw = f32(dw0), db = f32(db0);
      Ops64::linear_backward(x, w, dy, &dx64, &dw64, &db64);
      Cpu::linear_backward(f32(x), w, f32(dy), &dx, &dw, &db);
      check_close(std::string(Fwd::name) + " linear dx", dx, dx64, kF32Bound);
      check_close(std::string(Fwd::name) + " linear dW (accumulated)", added(dw, dw0), added(dw64, dw0), kF32Bound);
      check_close(std::string(Fwd::name) + " linear db (accumulated)", added(db, db0), added(db64, db0), kF32Bound);
    }
  }
  // dx written over dy (N = K): the product must not read what it has already written.
  const Tensor x = rng.uniform({50, 150}), w = rng.uniform({150, 150}, -1, 1, DType::BF16), dy = rng.uniform({50, 150});
  Tensor dx64 = poisoned({50, 150}), in_place = f32(dy);
  Ops64::linear_backward(x, w, dy, &dx64, nullptr, nullptr);
  Cpu::linear_backward(f32(x), w, in_place, &in_place, nullptr, nullptr);
  check_close(std::string(Fwd::name) + " linear dx over dy", in_place, dx64, kF32Bound);
}

// Beyond the finite-difference layouts: more than one block of 64 keys and of 64 (query, head) rows,
// head sizes on and off the 16-float vector width, windows and padding at that size.
constexpr Layout kLargeLayouts[] = {
    {"prefill S 67, hd 64, pads", 2, 67, 67, -1, 64, true, 0, true},
    {"prefill S 67, hd 72, window 16", 1, 67, 67, -1, 72, true, 16, false},
    {"chunk: 40 queries after 90, kv_len 130 of 140, hd 40, window 50, pads", 2, 40, 140, 130, 40, true, 50, true},
    {"cross: Sq 70, Sk 100 of 120, hd 48, pads", 2, 70, 120, 100, 48, false, 0, true},
};

void check_attention(const Layout& l, std::int64_t group, nn::MaskRule rule, float softcap, Rng& rng) {
  const AttentionCase c(l, group, rule, softcap);
  INFO(c.label);
  const auto& [q_shape, kv_shape, p, valid] = std::tie(c.q_shape, c.kv_shape, c.p, c.valid);
  const Tensor q = rng.uniform(q_shape, -2, 2), k = rng.uniform(kv_shape, -2, 2), v = rng.uniform(kv_shape),
               dout = rng.uniform(q_shape);
  Tensor out64 = Tensor::empty(q_shape, DType::F64), out32 = Tensor::empty(q_shape, DType::F32);
  F64::attention(q, k, v, out64, p);
  Fwd::attention(f32(q), f32(k), f32(v), out32, p);
  const Tensor dk0 = rng.uniform(kv_shape), dv0 = rng.uniform(kv_shape);
  Tensor dq64 = poisoned(q_shape), dk64 = clone(dk0), dv64 = clone(dv0);
  Tensor dq = poisoned(q_shape, DType::F32), dk = f32(dk0), dv = f32(dv0);
  Ops64::attention_backward(q, k, v, out64, dout, p, dq64, dk64, dv64);
  Cpu::attention_backward(f32(q), f32(k), f32(v), out32, f32(dout), p, dq, dk, dv);

  const bool near_minus_1e4 = rule == nn::MaskRule::flas_additive && l.pads && has_fully_masked_query(l, valid);
  const double bound = near_minus_1e4 ? kF32AtMinus1e4 : kF32Bound;
  const std::string tag = near_minus_1e4 ? " (flas_additive, fully masked rows)" : "";
  check_close(std::string(Fwd::name) + " attention dq" + tag, dq, dq64, bound);
  check_close(std::string(Fwd::name) + " attention dk (accumulated)" + tag, added(dk, dk0), added(dk64, dk0), bound);
  check_close(std::string(Fwd::name) + " attention dv (accumulated)" + tag, added(dv, dv0), added(dv64, dv0), bound);
  if (l.kv_len >= 0)  // cache rows at and beyond kv_len are not touched
    for (std::int64_t b = 0; b < l.B; ++b) {
      CHECK(testing::max_rel_diff(dk[b].slice(l.kv_len, l.capacity), dk0[b].slice(l.kv_len, l.capacity)) == 0);
      CHECK(testing::max_rel_diff(dv[b].slice(l.kv_len, l.capacity), dv0[b].slice(l.kv_len, l.capacity)) == 0);
    }
}

TEST_CASE("CPU attention backward: every layout × GQA group × mask rule × soft-cap") {
  Rng rng(402);
  std::vector<Layout> layouts(std::begin(kSmallLayouts), std::end(kSmallLayouts));
  layouts.insert(layouts.end(), std::begin(kLargeLayouts), std::end(kLargeLayouts));
  for (const Layout& l : layouts)
    for (std::int64_t group : {1, 2, 4})
      for (nn::MaskRule rule : {nn::MaskRule::hf_min, nn::MaskRule::flas_additive, nn::MaskRule::replace_neg1e4})
        for (float softcap : {0.0f, 1.5f, 50.0f}) check_attention(l, group, rule, softcap, rng);
}

TEST_CASE("CPU rms_norm and add_gated backward with parameter gradients, below and above the thread threshold") {
  Rng rng(403);
  for (auto [M, D] : {std::array<std::int64_t, 2>{3, 33}, {40, 1000}}) {
    CAPTURE(M);
    CAPTURE(D);
    for (DType wt : {DType::F32, DType::BF16}) {
      const Tensor x = rng.uniform({M, D}, -3, 3), w = rng.uniform({D}, -0.5, 0.5, wt), dy = rng.uniform({M, D});
      const Tensor dw0 = rng.uniform({D});
      Tensor dx64 = poisoned({M, D}), dw64 = clone(dw0), dx = f32(dy), dw = f32(dw0);
      Ops64::rms_norm_backward(x, w, 1e-6f, dy, dx64, &dw64);
      Cpu::rms_norm_backward(f32(x), w, 1e-6f, dx, dx, &dw);  // dx = dy, as the trainer calls it
      check_close(std::string(Fwd::name) + " rms_norm dx (over dy)", dx, dx64, kF32Bound);
      check_close(std::string(Fwd::name) + " rms_norm dw (accumulated)", added(dw, dw0), added(dw64, dw0), kF32Bound);

      Tensor dg64 = clone(dw0), dg = f32(dw0), dxg64 = poisoned({M, D}), dxg = poisoned({M, D}, DType::F32);
      Ops64::add_gated_backward(w, x, dy, dxg64, &dg64);
      Cpu::add_gated_backward(w, f32(x), f32(dy), dxg, &dg);
      check_close(std::string(Fwd::name) + " add_gated dx", dxg, dxg64, kF32Bound);
      check_close(std::string(Fwd::name) + " add_gated dg (accumulated)", added(dg, dw0), added(dg64, dw0), kF32Bound);
    }
  }
}

TEST_CASE("CPU rope, gelu_tanh_mul, softcap, silu backward and cross-entropy") {
  Rng rng(404);
  for (std::int64_t S : {3, 300}) {
    CAPTURE(S);
    Tensor positions = Tensor::empty({2, S}, DType::I64);
    for (std::int64_t i = 0; i < 2 * S; ++i) positions.data<std::int64_t>()[i] = rng.integer(0, 8000);
    Tensor inv_freq = Tensor::empty({8}, DType::F32);
    for (std::int64_t i = 0; i < 8; ++i) inv_freq.data<float>()[i] = float(std::pow(10000.0, -2.0 * double(i) / 16.0));
    const Tensor dy = rng.uniform({2, S, 4, 16});
    Tensor dx64 = clone(dy), dx = f32(dy);
    Ops64::rope_backward(dx64, positions, inv_freq);
    Cpu::rope_backward(dx, positions, inv_freq);
    check_close(std::string(Fwd::name) + " rope dx", dx, dx64, kF32Bound);
  }
  for (const Shape& s : {Shape{5, 13}, Shape{40, 1001}}) {
    const Tensor gate = rng.uniform(s, -6, 6), up = rng.uniform(s, -2, 2), dout = rng.uniform(s);
    Tensor dg64 = poisoned(s), du64 = poisoned(s), dg = poisoned(s, DType::F32), du = poisoned(s, DType::F32);
    Ops64::gelu_tanh_mul_backward(gate, up, dout, dg64, du64);
    Cpu::gelu_tanh_mul_backward(f32(gate), f32(up), f32(dout), dg, du);
    check_close(std::string(Fwd::name) + " gelu_tanh_mul dgate", dg, dg64, kF32Bound);
    check_close(std::string(Fwd::name) + " gelu_tanh_mul dup", du, du64, kF32Bound);

    Tensor capped = rng.uniform(s, -6, 6);
    F64::softcap(capped, 1.5f);
    const Tensor y = convert(f32(capped), DType::F64);  // identical inputs for both runs
    Tensor dx64 = poisoned(s), dx = f32(dout);
    Ops64::softcap_backward(y, 1.5f, dout, dx64);
    Cpu::softcap_backward(f32(y), 1.5f, dx, dx);  // dx = dy, as the LM loss calls it
    check_close(std::string(Fwd::name) + " softcap dx (over dy)", dx, dx64, kF32Bound);

    Tensor ds64 = poisoned(s), ds = poisoned(s, DType::F32);
    Ops64::silu_backward(gate, dout, ds64);
    Cpu::silu_backward(f32(gate), f32(dout), ds);
    check_close(std::string(Fwd::name) + " silu dx", ds, ds64, kF32Bound);
  }
  for (auto [M, V] : {std::array<std::int64_t, 2>{6, 50}, {7, 30011}}) {
    CAPTURE(V);
    const Tensor logits = rng.uniform({M, V}, -30, 30);
    Tensor labels = Tensor::empty({M}, DType::I64);
    for (std::int64_t m = 0; m < M; ++m) labels.data<std::int64_t>()[m] = m == 2 ? ignore_label : rng.integer(0, V - 1);
    Tensor d64 = poisoned({M, V}), d = f32(logits);
    const double loss64 = Ops64::cross_entropy(logits, labels, &d64);
    CHECK(Cpu::cross_entropy(f32(logits), labels, nullptr) == doctest::Approx(loss64).epsilon(kF32Bound));
    const double loss = Cpu::cross_entropy(d, labels, &d);  // dlogits over the logits
    CHECK(loss == doctest::Approx(loss64).epsilon(kF32Bound));
    check_close(std::string(Fwd::name) + " cross_entropy dlogits (over logits)", d, d64, kF32Bound);
  }
}

TEST_CASE("CPU backward ops reject what the scalar ones reject") {
  Rng rng(405);
  const Tensor x = f32(rng.uniform({4, 6})), w = f32(rng.uniform({5, 6})), dy = f32(rng.uniform({4, 5}));
  Tensor dx = Tensor::empty({4, 6}, DType::F32), f64_grad = zeros({5, 6}, DType::F64);
  CHECK_THROWS_AS(Cpu::linear_backward(x, w, dy, &dx, &f64_grad, nullptr), Error);
  CHECK_THROWS_AS(Cpu::linear_backward(x, w, f32(rng.uniform({4, 6})), &dx, nullptr, nullptr), Error);
  Tensor labels = Tensor::empty({4}, DType::I64);
  for (std::int64_t m = 0; m < 4; ++m) labels.data<std::int64_t>()[m] = m == 3 ? 5 : m;  // 5 is out of [0, 5)
  Tensor logits = f32(rng.uniform({4, 5}));
  CHECK_THROWS_AS(Cpu::cross_entropy(logits, labels, nullptr), Error);
  const Tensor q = f32(rng.uniform({1, 3, 2, 4})), k = f32(rng.uniform({1, 3, 1, 4}));
  Tensor dq = Tensor::empty(q.shape(), DType::F32), dk = zeros(k.shape()), dv_wrong = zeros({1, 3, 1, 5});
  CHECK_THROWS_AS(Cpu::attention_backward(q, k, k, q, q, nn::AttentionParams{}, dq, dk, dv_wrong), Error);
  Tensor g = f32(rng.uniform({6})), dg = zeros({5});
  CHECK_THROWS_AS(Cpu::add_gated_backward(g, x, x, dx, &dg), Error);
}

}  // namespace
}  // namespace flas::backward_test
