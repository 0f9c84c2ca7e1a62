// Per-row flow time (DESIGN.md §3): rows of a batched state integrate t ∈ [0, T_b] as s ∈ [0, 1]. Fixed-step
// Euler with N steps must be the FLAS reference update bit for bit in f32:
//   dt_b = f32(T_b / N), t_b,k = f32(k·dt_b), h ← h + dt_b·v(h, t_b,k),
// with no fused multiply-add (PyTorch rounds the product, then the sum). Also: every other method on
// per-row time equals solving each row alone, and observers see the reference trajectory.
#include <doctest/doctest.h>

#include <cstring>

#include "ode_test_util.hpp"

namespace {

using namespace flas;
using namespace flas::ode;
using namespace flas::ode::testing;

// A nonlinear f32 field that uses each row's time.
struct RowField {
  std::vector<std::vector<float>> seen_t;  // times each call saw, per row
  void operator()(const Tensor& h, RowTimes t, const EvalContext&, Tensor& v) {
    const std::int64_t rows = h.dim(0), per = h.numel() / rows;
    std::vector<float> ts;
    for (std::int64_t b = 0; b < rows; ++b) {
      const float tb = float(t[std::size_t(b)]);
      ts.push_back(tb);
      for (std::int64_t i = b * per; i < (b + 1) * per; ++i) v.data<float>()[i] = reference(h.data<float>()[i], tb);
    }
    seen_t.push_back(ts);
  }
  static float reference(float h, float t) { return std::tanh(h) * (1.0f + t) - 0.25f * t * h; }
};

}  // namespace

TEST_CASE("ode per-row time: Euler is the FLAS update bit for bit in f32") {
  std::mt19937 rng(1);
  const Tensor h0 = random_tensor({4, 5, 7}, rng, 1.0, DType::F32);
  const std::vector<float> T = {2.0f, 0.5f, 1.3f, 0.0f};  // 1.3/3 is not exact in f32; T = 0 is the identity
  for (int N : {1, 3, 7}) {
    RowField field;
    TrajectoryObserver<Tensor> traj;
    const std::vector<double> Td(T.begin(), T.end());
    auto sol = integrate<Euler>(field, h0, PerRowTime<float>{Td}, StepCount{N}, traj);
    // The reference loop, product and sum rounded separately.
    Tensor h = clone(h0);
    const std::int64_t per = h.numel() / 4;
    for (int k = 0; k < N; ++k) {
      for (std::int64_t b = 0; b < 4; ++b) {
        const float dt = T[std::size_t(b)] / float(N);
        const float t = float(k) * dt;
        CHECK(field.seen_t[std::size_t(k)][std::size_t(b)] == t);
        for (std::int64_t i = b * per; i < (b + 1) * per; ++i) {
          float& x = h.data<float>()[i];
          const float v = RowField::reference(x, t);
          // Trajectory pairs (h_k, v_k) of the observer
          CHECK(traj.points[std::size_t(k)].y.data<float>()[i] == x);
          CHECK(traj.points[std::size_t(k)].v.data<float>()[i] == v);
          volatile float prod = dt * v;
          x = x + prod;
        }
      }
    }
    CHECK(std::memcmp(sol.ys.back().raw(), h.raw(), h.bytes()) == 0);
    CHECK(std::memcmp(traj.final_y.raw(), h.raw(), h.bytes()) == 0);
    CHECK(std::memcmp(sol.ys.back().slice(3, 4).raw(), h0.slice(3, 4).raw(), h0.slice(3, 4).bytes()) == 0);
    CHECK(traj.points.size() == std::size_t(N));
  }
}

TEST_CASE("ode per-row time: a batched solve equals each row solved alone") {
  std::mt19937 rng(4);
  MlpField field = random_mlp(3, 6, rng);
  const Tensor h0 = random_tensor({3, 2, 3}, rng);
  const std::vector<double> T = {1.5, 0.4, 2.2};
  auto per_row = [&](auto method, auto schedule, double bound) {
    using M = decltype(method);
    auto batched = integrate<M>(field, h0, PerRowTime<double>{T, {0.0, 0.5, 1.0}}, schedule);
    REQUIRE(batched.ys.size() == 3);
    for (std::size_t b = 0; b < T.size(); ++b) {
      const Tensor row = clone(h0.slice(std::int64_t(b), std::int64_t(b) + 1));
      auto alone = integrate<M>(field, row, Times{{0.0, 0.5 * T[b], T[b]}}, schedule);
      for (std::size_t j = 0; j < 3; ++j) {
        const Tensor got = batched.ys[j].slice(std::int64_t(b), std::int64_t(b) + 1);
        CHECK_MESSAGE(max_rel(got, alone.ys[j]) < bound, M::name << " row " << b << " output " << j);
      }
    }
  };
  per_row(Rk4ThreeEighths{}, StepCount{10}, 1e-13);
  per_row(Midpoint{}, StepCount{8}, 1e-13);
  // dopri5's steps are shared by the rows (one error norm), so rows agree to the tolerance only.
  per_row(Dopri5{}, Tolerances{.rtol = 1e-10, .atol = 1e-12}, 1e-8);
}

TEST_CASE("ode per-row time: gradients of a batched solve") {
  std::mt19937 rng(8);
  MlpField f = random_mlp(2, 5, rng);
  const Tensor h0 = random_tensor({2, 3, 2}, rng);
  const std::vector<double> T = {0.7, 1.9};
  std::vector<Tensor> cot{zeros(h0.shape(), DType::F64), random_tensor(h0.shape(), rng)};
  auto direct = solve<Rk4Classic, Direct>(f, h0, PerRowTime<double>{T}, StepCount{6});
  const Tensor g_direct = direct.backward(cot);
  // Each row alone on a shared clock gives that row's gradient.
  for (std::size_t b = 0; b < T.size(); ++b) {
    std::mt19937 rng2(8);
    MlpField f2 = random_mlp(2, 5, rng2);
    const Tensor row = clone(h0.slice(std::int64_t(b), std::int64_t(b) + 1));
    auto alone = solve<Rk4Classic, Direct>(f2, row, Times{{0.0, T[b]}}, StepCount{6});
    std::vector<Tensor> c{zeros(row.shape(), DType::F64), clone(cot[1].slice(std::int64_t(b), std::int64_t(b) + 1))};
    CHECK(max_rel(alone.backward(c), g_direct.slice(std::int64_t(b), std::int64_t(b) + 1)) < 1e-13);
  }
  // Backsolve on per-row time approaches it as the steps shrink.
  std::mt19937 rng3(8);
  MlpField f3 = random_mlp(2, 5, rng3);
  auto back = solve<Rk4Classic, Backsolve>(f3, h0, PerRowTime<double>{T}, StepCount{6});
  CHECK(max_rel(back.backward(cot), g_direct) < 1e-4);
}

TEST_CASE("ode observers: early stop and progress") {
  std::mt19937 rng(9);
  MlpField f = random_mlp(3, 4, rng);
  const Tensor y0 = random_tensor({2, 3}, rng);
  StopWhen stop([](std::int64_t step, double, const Tensor&, const Tensor&) { return step == 2; });
  auto sol = integrate<Rk4ThreeEighths>(f, y0, Times{{0.0, 0.5, 1.0}}, StepCount{10}, stop);
  CHECK(stop.stopped);
  CHECK(sol.stats.stopped_early);
  CHECK(sol.stats.steps == 3);
  CHECK(sol.ys.size() == 1);  // t = 0.5 was not reached
  // Early stop on an adaptive solve, with gradients of what was reached.
  StopWhen stop2([](std::int64_t step, double, const Tensor&, const Tensor&) { return step == 1; });
  auto sol2 = solve<Dopri5, Direct>(f, y0, Times{{0.0, 0.01, 5.0}}, Tolerances{}, Direct{}, stop2);
  CHECK(sol2.stats.steps == 2);
  std::vector<Tensor> cot(sol2.ys.size(), zeros(y0.shape(), DType::F64));
  CHECK_NOTHROW(sol2.backward(cot));
  // Progress lines and several observers at once.
  std::FILE* sink = std::tmpfile();
  ProgressObserver progress(2, sink);
  TrajectoryObserver<Tensor> traj;
  Observers both(progress, traj);
  integrate<Euler>(f, y0, Times{{0.0, 1.0}}, StepCount{4}, both);
  CHECK(traj.points.size() == 4);
  CHECK(std::ftell(sink) > 0);
  std::fclose(sink);
}
