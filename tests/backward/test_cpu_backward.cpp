// The CPU backend's backward ops against the scalar backend's (themselves checked against finite
// differences): the oneDNN-routed linear VJPs on odd shapes with f32 and bf16 weights, and the ops
// the CPU backend forwards to the scalar ones on one representative call each.
#include <doctest/doctest.h>

#include <random>

#include "flas/backends/cpu_backward.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {
Tensor random_f32(const Shape& s, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor t = Tensor::empty(s, DType::F32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(g);
  return t;
}
}  // namespace

TEST_CASE("CPU linear backward equals the scalar one (dx, dW accumulated, db), f32 and bf16 weights") {
  for (auto [M, N, K] : {std::array<std::int64_t, 3>{1, 7, 5}, {3, 33, 17}, {40, 64, 96}, {129, 20, 31}}) {
    for (DType wt : {DType::F32, DType::BF16}) {
      const Tensor x = random_f32({M, K}, 1), dy = random_f32({M, N}, 2);
      const Tensor w = convert(random_f32({N, K}, 3), wt);
      Tensor dx_cpu = Tensor::empty({M, K}, DType::F32), dx_ref = Tensor::empty({M, K}, DType::F32);
      std::fill_n(dx_cpu.data<float>(), dx_cpu.numel(), NAN);
      Tensor dw_cpu = random_f32({N, K}, 4), dw_ref = clone(dw_cpu);
      Tensor db_cpu = random_f32({N}, 5), db_ref = clone(db_cpu);
      BackwardOps<CpuBackend>::linear_backward(x, w, dy, &dx_cpu, wt == DType::F32 ? &dw_cpu : nullptr, &db_cpu);
      BackwardOps<ScalarBackend<float>>::linear_backward(x, w, dy, &dx_ref, wt == DType::F32 ? &dw_ref : nullptr, &db_ref);
      INFO("M " << M << " N " << N << " K " << K << " " << dtype_name(wt));
      CHECK(max_rel_diff(dx_cpu, dx_ref) <= 1e-5);
      CHECK(max_rel_diff(dw_cpu, dw_ref) <= 1e-5);
      CHECK(max_rel_diff(db_cpu, db_ref) <= 1e-5);
    }
  }
}

TEST_CASE("CPU attention and norm backward forward to the scalar ops") {
  const Tensor q = random_f32({1, 4, 2, 8}, 6), k = random_f32({1, 4, 1, 8}, 7), v = random_f32({1, 4, 1, 8}, 8);
  Tensor out = Tensor::empty({1, 4, 2, 8}, DType::F32);
  nn::AttentionParams p;
  p.scale = 0.3f;
  p.softcap = 50;
  CpuBackend::attention(q, k, v, out, p);
  const Tensor dout = random_f32({1, 4, 2, 8}, 9);
  Tensor dq1 = Tensor::empty(q.shape(), DType::F32), dq2 = Tensor::empty(q.shape(), DType::F32);
  Tensor dk1 = zeros(k.shape()), dk2 = zeros(k.shape()), dv1 = zeros(v.shape()), dv2 = zeros(v.shape());
  BackwardOps<CpuBackend>::attention_backward(q, k, v, out, dout, p, dq1, dk1, dv1);
  BackwardOps<ScalarBackend<float>>::attention_backward(q, k, v, out, dout, p, dq2, dk2, dv2);
  CHECK(max_rel_diff(dq1, dq2) == 0);
  CHECK(max_rel_diff(dk1, dk2) == 0);
  CHECK(max_rel_diff(dv1, dv2) == 0);
}
