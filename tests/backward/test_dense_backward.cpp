// The row-wise and element-wise VJPs of ScalarBackend<double> against central finite differences of
// L = Σ r ⊙ y: linear, rms_norm, add_gated, rope, gelu_tanh_mul, softcap, silu. Every input and every
// parameter cotangent is checked, on sizes that include 1 and odd widths.
#include "backward_test_support.hpp"
#include "flas/nn/elementwise.hpp"

namespace flas::backward_test {
namespace {

struct RowsCols {
  std::int64_t M, D;
};
constexpr RowsCols kRowShapes[] = {{1, 1}, {3, 5}, {4, 16}, {2, 7}};

TEST_CASE("linear_backward: dx, dw, db against finite differences; nullptr skips a gradient") {
  Rng rng(11);
  struct Case {
    Shape x;
    std::int64_t N;
  };
  const Case cases[] = {{{1, 1}, 1}, {{3, 5}, 2}, {{7, 4}, 9}, {{2, 3, 5}, 4}};
  for (const Case& c : cases) {
    CAPTURE(c.x);
    CAPTURE(c.N);
    const std::int64_t K = c.x[-1], M = c.x.numel() / K;
    Tensor x = rng.uniform(c.x), w = rng.uniform({c.N, K}), b = rng.uniform({c.N});
    const Tensor r = rng.uniform({M, c.N});
    auto objective = [&] {
      Tensor y = Tensor::empty({M, c.N}, DType::F64);
      F64::linear(x, w, &b, y);
      return weighted_sum(y, r);
    };
    const Tensor dw0 = rng.uniform({c.N, K}), db0 = rng.uniform({c.N});
    Tensor dx = poisoned(c.x), dw = clone(dw0), db = clone(db0);
    Ops64::linear_backward(x, w, r, &dx, &dw, &db);
    check_close("linear dx", dx, fd_gradient(x, objective), kFdBound);
    check_close("linear dw (accumulated)", added(dw, dw0), fd_gradient(w, objective), kFdBound);
    check_close("linear db (accumulated)", added(db, db0), fd_gradient(b, objective), kFdBound);

    // Each gradient alone gives the same numbers; the others are left untouched.
    Tensor dx_only = poisoned(c.x);
    Ops64::linear_backward(x, w, r, &dx_only, nullptr, nullptr);
    CHECK(testing::max_rel_diff(dx_only, dx) == 0);
    Tensor dw_only = clone(dw0);
    Ops64::linear_backward(x, w, r, nullptr, &dw_only, nullptr);
    CHECK(testing::max_rel_diff(dw_only, dw) == 0);
  }
}

TEST_CASE("linear_backward: dx through F32 and BF16 weights reads them as the forward does") {
  Rng rng(12);
  for (DType wdt : {DType::F32, DType::BF16}) {
    const std::string weight_dtype(dtype_name(wdt));
    CAPTURE(weight_dtype);
    Tensor x = rng.uniform({5, 7});
    const Tensor w = rng.uniform({3, 7}, -1, 1, wdt), r = rng.uniform({5, 3});
    auto objective = [&] {
      Tensor y = Tensor::empty({5, 3}, DType::F64);
      F64::linear(x, w, nullptr, y);
      return weighted_sum(y, r);
    };
    Tensor dx = poisoned({5, 7}), dw = zeros({3, 7}, DType::F64);
    Ops64::linear_backward(x, w, r, &dx, &dw, nullptr);
    check_close("linear dx (f32/bf16 weights)", dx, fd_gradient(x, objective), kFdBound);
    Tensor wrong_dtype = zeros({3, 7}, DType::F32);
    CHECK_THROWS_AS(Ops64::linear_backward(x, w, r, nullptr, &wrong_dtype, nullptr), Error);
  }
}

TEST_CASE("rms_norm_backward: dx and dw against finite differences; dx may be dy") {
  Rng rng(21);
  for (const RowsCols& s : kRowShapes)
    for (float eps : {1e-6f, 0.5f}) {
      if (s.D == 1 && eps < 0.1f) continue;  // D = 1 with a tiny eps is sign(x): a ~1e-6 gradient, all FD noise
      CAPTURE(s.M);
      CAPTURE(s.D);
      CAPTURE(eps);
      Tensor x = rng.uniform({s.M, s.D}, -2, 2), w = rng.uniform({s.D}, -0.5, 0.5);
      const Tensor r = rng.uniform({s.M, s.D});
      auto objective = [&] {
        Tensor y = Tensor::empty({s.M, s.D}, DType::F64);
        F64::rms_norm(x, w, eps, y);
        return weighted_sum(y, r);
      };
      const Tensor dw0 = rng.uniform({s.D});
      Tensor dx = poisoned({s.M, s.D}), dw = clone(dw0);
      Ops64::rms_norm_backward(x, w, eps, r, dx, &dw);
      check_close("rms_norm dx", dx, fd_gradient(x, objective), kFdBound);
      check_close("rms_norm dw (accumulated)", added(dw, dw0), fd_gradient(w, objective), kFdBound);

      Tensor in_place = clone(r);
      Ops64::rms_norm_backward(x, w, eps, in_place, in_place, nullptr);
      CHECK(testing::max_rel_diff(in_place, dx) == 0);
    }
}

TEST_CASE("add_gated_backward: dx and dg against finite differences") {
  Rng rng(31);
  for (const RowsCols& s : kRowShapes) {
    CAPTURE(s.M);
    CAPTURE(s.D);
    Tensor g = rng.uniform({s.D}), x = rng.uniform({s.M, s.D});
    const Tensor y0 = rng.uniform({s.M, s.D}), r = rng.uniform({s.M, s.D});
    auto objective = [&] {
      Tensor y = clone(y0);
      F64::add_gated(y, g, x);
      return weighted_sum(y, r);
    };
    const Tensor dg0 = rng.uniform({s.D});
    Tensor dx = poisoned({s.M, s.D}), dg = clone(dg0);
    Ops64::add_gated_backward(g, x, r, dx, &dg);
    check_close("add_gated dx", dx, fd_gradient(x, objective), kFdBound);
    check_close("add_gated dg (accumulated)", added(dg, dg0), fd_gradient(g, objective), kFdBound);
    Tensor dx_only = poisoned({s.M, s.D});
    Ops64::add_gated_backward(g, x, r, dx_only, nullptr);
    CHECK(testing::max_rel_diff(dx_only, dx) == 0);
  }
}

TEST_CASE("rope_backward is the transpose of rope, at small and large positions") {
  Rng rng(41);
  for (std::int64_t hd : {2, 6, 8}) {
    CAPTURE(hd);
    const std::int64_t B = 2, S = 3, nh = 3, half = hd / 2;
    Tensor positions = Tensor::empty({B, S}, DType::I64);
    for (std::int64_t i = 0; i < B * S; ++i) positions.data<std::int64_t>()[i] = i == 0 ? 0 : rng.integer(1, 5000);
    Tensor inv_freq = Tensor::empty({half}, DType::F32);
    for (std::int64_t i = 0; i < half; ++i)
      inv_freq.data<float>()[i] = float(std::pow(10000.0, -2.0 * double(i) / double(hd)));
    Tensor x = rng.uniform({B, S, nh, hd});
    const Tensor r = rng.uniform({B, S, nh, hd});
    auto objective = [&] {
      Tensor y = clone(x);
      F64::rope(y, positions, inv_freq);
      return weighted_sum(y, r);
    };
    Tensor dx = clone(r);
    Ops64::rope_backward(dx, positions, inv_freq);
    check_close("rope dx", dx, fd_gradient(x, objective), kFdBound);
  }
}

TEST_CASE("gelu_tanh_mul_backward: dgate and dup against finite differences") {
  Rng rng(51);
  for (const RowsCols& s : kRowShapes) {
    CAPTURE(s.M);
    CAPTURE(s.D);
    Tensor gate = rng.uniform({s.M, s.D}, -4, 4), up = rng.uniform({s.M, s.D}, -2, 2);
    const Tensor r = rng.uniform({s.M, s.D});
    auto objective = [&] {
      Tensor out = Tensor::empty({s.M, s.D}, DType::F64);
      F64::gelu_tanh_mul(gate, up, out);
      return weighted_sum(out, r);
    };
    Tensor dgate = poisoned({s.M, s.D}), dup = poisoned({s.M, s.D});
    Ops64::gelu_tanh_mul_backward(gate, up, r, dgate, dup);
    check_close("gelu_tanh_mul dgate", dgate, fd_gradient(gate, objective), kFdBound);
    check_close("gelu_tanh_mul dup", dup, fd_gradient(up, objective), kFdBound);
  }
}

TEST_CASE("softcap_backward from the capped values; dx may be dy") {
  Rng rng(61);
  for (float cap : {1.5f, 30.0f})
    for (const RowsCols& s : kRowShapes) {
      CAPTURE(cap);
      CAPTURE(s.M);
      CAPTURE(s.D);
      Tensor x = rng.uniform({s.M, s.D}, -6, 6);
      const Tensor r = rng.uniform({s.M, s.D});
      auto objective = [&] {
        Tensor y = clone(x);
        F64::softcap(y, cap);
        return weighted_sum(y, r);
      };
      Tensor y = clone(x);
      F64::softcap(y, cap);
      Tensor dx = poisoned({s.M, s.D});
      Ops64::softcap_backward(y, cap, r, dx);
      check_close("softcap dx", dx, fd_gradient(x, objective), kFdBound);
      Tensor in_place = clone(r);
      Ops64::softcap_backward(y, cap, in_place, in_place);
      CHECK(testing::max_rel_diff(in_place, dx) == 0);
    }
}

TEST_CASE("silu_backward against finite differences of nn::silu") {
  Rng rng(71);
  for (const RowsCols& s : kRowShapes) {
    CAPTURE(s.M);
    CAPTURE(s.D);
    Tensor x = rng.uniform({s.M, s.D}, -6, 6);
    const Tensor r = rng.uniform({s.M, s.D});
    auto objective = [&] {
      Tensor y = clone(x);
      nn::silu<F64>(y);
      return weighted_sum(y, r);
    };
    Tensor dx = poisoned({s.M, s.D});
    Ops64::silu_backward(x, r, dx);
    check_close("silu dx", dx, fd_gradient(x, objective), kFdBound);
  }
}

}  // namespace
}  // namespace flas::backward_test
