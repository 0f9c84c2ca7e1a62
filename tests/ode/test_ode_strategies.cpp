// Gradient strategies against each other and against central finite differences on random fields
// (diffrax's test pattern), memory of checkpointed below direct's, the evaluation slots a stateful field
// sees, and the errors the library raises instead of running a combination that cannot be right.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <tuple>

#include "ode_test_util.hpp"

namespace {

using namespace flas;
using namespace flas::ode;
using namespace flas::ode::testing;

struct Problem {
  MlpField field;
  Tensor y0;
  std::vector<double> ts;
  std::vector<Tensor> cot;  // the loss is L = Σ_j <cot_j, y(t_j)>
};

Problem make_problem(std::uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p{random_mlp(3, 8, rng), random_tensor({2, 3}, rng), {0.0, 0.3, 0.7}, {}};
  for (std::size_t j = 0; j < p.ts.size(); ++j) p.cot.push_back(random_tensor({2, 3}, rng));
  return p;
}

double loss_of(const std::vector<Tensor>& ys, const std::vector<Tensor>& cot) {
  double l = 0;
  for (std::size_t j = 0; j < ys.size(); ++j) l += ops::dot(ys[j], cot[j]);
  return l;
}

struct Grad {
  Tensor y0;
  std::vector<Tensor> params;
  SolveStats stats;
};

// Every call builds its own problem: tensors share storage when copied, and the field accumulates gradients.
template <class Method, class Strategy, class Schedule>
Grad gradient(std::uint32_t seed, const Schedule& sch, Strategy strategy = {}) {
  Problem p = make_problem(seed);
  auto sol = solve<Method>(p.field, p.y0, Times{p.ts}, sch, strategy);
  Grad g{sol.backward(p.cot), {}, {}};
  g.params = gradients(p.field);
  g.stats = sol.stats;
  return g;
}

// Central differences of L(y0, θ) for every element of y0 and of every parameter.
template <class Method, class Schedule>
Grad finite_differences(std::uint32_t seed, const Schedule& sch, double eps) {
  auto L = [&](Problem& p) {
    auto sol = integrate<Method>(p.field, p.y0, Times{p.ts}, sch);
    return loss_of(sol.ys, p.cot);
  };
  Problem p = make_problem(seed);
  Grad g{zeros(p.y0.shape(), DType::F64), {}, {}};
  for (std::int64_t i = 0; i < p.y0.numel(); ++i) {
    double& x = p.y0.data<double>()[i];
    const double x0 = x;
    x = x0 + eps;
    const double lp = L(p);
    x = x0 - eps;
    const double lm = L(p);
    x = x0;
    g.y0.data<double>()[i] = (lp - lm) / (2 * eps);
  }
  std::vector<Tensor*> params;
  p.field.for_each_parameter([&](std::string_view, Tensor& v, Tensor&) { params.push_back(&v); });
  for (Tensor* t : params) {
    Tensor d = zeros(t->shape(), DType::F64);
    for (std::int64_t i = 0; i < t->numel(); ++i) {
      double& x = t->data<double>()[i];
      const double x0 = x;
      x = x0 + eps;
      p.field.for_each_parameter([](std::string_view, Tensor&, Tensor&) {});  // refresh cached transposes
      const double lp = L(p);
      x = x0 - eps;
      p.field.for_each_parameter([](std::string_view, Tensor&, Tensor&) {});
      const double lm = L(p);
      x = x0;
      p.field.for_each_parameter([](std::string_view, Tensor&, Tensor&) {});
      d.data<double>()[i] = (lp - lm) / (2 * eps);
    }
    g.params.push_back(d);
  }
  return g;
}

double grad_diff(const Grad& a, const Grad& b) { return std::max(max_rel(a.y0, b.y0), max_rel(a.params, b.params)); }

StepSize halved(StepSize s) { return {s.h / 2}; }
StepCount halved(StepCount s) { return {s.n * 2}; }

template <class Method, class Schedule>
void check_fixed_method(const Schedule& sch) {
  const std::uint32_t p = 7;
  const Grad direct = gradient<Method, Direct>(p, sch);
  const Grad every2 = gradient<Method>(p, sch, Checkpointed{.every = 2});
  const Grad every3 = gradient<Method>(p, sch, Checkpointed{.every = 3});
  const Grad binomial = gradient<Method>(p, sch, Checkpointed{.snapshots = 2});
  const Grad none_left = gradient<Method>(p, sch, Checkpointed{.snapshots = 1});
  const Grad back = gradient<Method, Backsolve>(p, sch);
  const Grad fd = finite_differences<Method>(p, sch, 1e-5);
  INFO(std::string(Method::name));
  // Recomputation replays the recorded steps: the same numbers as direct, bit for bit.
  CHECK(grad_diff(direct, every2) == 0.0);
  CHECK(grad_diff(direct, every3) == 0.0);
  CHECK(grad_diff(direct, binomial) == 0.0);
  CHECK(grad_diff(direct, none_left) == 0.0);
  CHECK(grad_diff(direct, fd) < 1e-8);  // the exact gradient of the discrete solution
  // The continuous adjoint differs from the discrete gradient by the discretisation error: it shrinks at
  // the method's order when the step is halved.
  const double e_back = grad_diff(direct, back);
  const double e_back2 = grad_diff(gradient<Method, Direct>(p, halved(sch)), gradient<Method, Backsolve>(p, halved(sch)));
  const double order = std::log2(e_back / e_back2);
  CHECK(std::abs(order - Method::tableau.order) < 0.3);
  MESSAGE(std::string(Method::name) << ": direct vs finite differences " << grad_diff(direct, fd)
                                    << ", vs backsolve " << e_back << " (halving the step: order " << order << ")");
}

}  // namespace

TEST_CASE("ode strategies: checkpointed equals direct, both equal finite differences, backsolve is close") {
  check_fixed_method<Euler>(StepSize{0.05});
  check_fixed_method<Midpoint>(StepSize{0.05});
  check_fixed_method<Rk4Classic>(StepSize{0.1});
  check_fixed_method<Rk4ThreeEighths>(StepCount{7});
}

TEST_CASE("ode strategies: dopri5 gradients agree with each other and with finite differences") {
  const std::uint32_t p = 11;
  Tolerances tol{.rtol = 1e-10, .atol = 1e-12};
  const Grad direct = gradient<Dopri5, Direct>(p, tol);
  const Grad every = gradient<Dopri5>(p, tol, Checkpointed{.every = 3});
  const Grad binomial = gradient<Dopri5>(p, tol, Checkpointed{.snapshots = 2});
  const Grad back = gradient<Dopri5, Backsolve>(p, tol);
  CHECK(grad_diff(direct, every) == 0.0);
  CHECK(grad_diff(direct, binomial) == 0.0);
  // Step sizes are constants to torchdiffeq's backprop (except the first): every gradient is within the
  // solver tolerance of the derivative of the solution.
  const Grad fd = finite_differences<Dopri5>(p, tol, 1e-5);
  CHECK(grad_diff(direct, fd) < 1e-6);
  CHECK(grad_diff(back, fd) < 1e-6);
  CHECK(grad_diff(direct, back) < 1e-6);
  MESSAGE("dopri5: direct vs fd " << grad_diff(direct, fd) << ", backsolve vs fd " << grad_diff(back, fd)
                                  << ", steps " << direct.stats.steps << ", rejected " << direct.stats.rejected);
  // Without the first-step path the gradient changes (torchdiffeq differentiates through it).
  Tolerances no_first = tol;
  no_first.differentiate_first_step = false;
  const Grad constant_dt = gradient<Dopri5, Direct>(p, no_first);
  CHECK(grad_diff(direct, constant_dt) > 0.0);
}

TEST_CASE("ode strategies: checkpointed keeps less than direct") {
  const std::uint32_t p = 3;
  const StepCount n{64};
  const auto direct = gradient<Rk4ThreeEighths, Direct>(p, n).stats.gradient_bytes_peak;
  const auto every = gradient<Rk4ThreeEighths>(p, n, Checkpointed{}).stats.gradient_bytes_peak;  // every 8
  const auto binomial = gradient<Rk4ThreeEighths>(p, n, Checkpointed{.snapshots = 3}).stats.gradient_bytes_peak;
  const auto back = gradient<Rk4ThreeEighths, Backsolve>(p, n).stats.gradient_bytes_peak;
  const std::size_t state = ops::bytes(make_problem(p).y0);
  MESSAGE("gradient memory in states: direct " << direct / state << ", checkpointed every 8 " << every / state
                                               << ", binomial(3) " << binomial / state << ", backsolve "
                                               << back / state);
  CHECK(direct >= 64 * 4 * state);
  CHECK(every < direct / 3);
  CHECK(binomial < every);
  CHECK(back < every);
}

namespace {

// A field that logs every evaluation slot, with a hash of the state it saw, to check that a stateful field
// is served the same (step, stage) for the same state by forward, recomputation and backward.
struct SlotLoggingField {
  using parameter_type = Tensor;
  struct Call {
    std::int64_t slot;
    double t, h;
    EvalPhase phase;
  };
  [[maybe_unused]] static constexpr bool needs_fixed_slots = true;
  MlpField inner;
  std::vector<Call> calls, vjps;
  static double fingerprint(const Tensor& h) {
    double s = 0;
    for (std::int64_t i = 0; i < h.numel(); ++i) s += h.data<double>()[i] * double(i + 1);
    return s;
  }
  void operator()(const Tensor& h, RowTimes t, const EvalContext& ctx, Tensor& v) {
    CHECK(ctx.slot_count > 0);
    CHECK(ctx.slot() < ctx.slot_count);
    calls.push_back({ctx.slot(), t[0], fingerprint(h), ctx.phase});
    inner(h, t, ctx, v);
  }
  void vjp(const Tensor& h, RowTimes t, const EvalContext& ctx, const Tensor& cv, Tensor& ch, std::span<double> ct) {
    vjps.push_back({ctx.slot(), t[0], fingerprint(h), ctx.phase});
    inner.vjp(h, t, ctx, cv, ch, ct);
  }
  template <class V>
  void for_each_parameter(V&& v) {
    inner.for_each_parameter(v);
  }
};

}  // namespace

TEST_CASE("ode strategies: a stateful field sees each slot once forward, and the same slots backward") {
  std::mt19937 rng(5);
  SlotLoggingField f{random_mlp(3, 8, rng), {}, {}};
  const Tensor y0 = random_tensor({2, 3}, rng);
  std::vector<Tensor> cot{zeros({2, 3}, DType::F64), random_tensor({2, 3}, rng)};
  for (int variant = 0; variant < 2; ++variant) {
    f.calls.clear(), f.vjps.clear();
    auto run = [&](auto strategy) {
      auto sol = solve<Rk4ThreeEighths>(f, y0, Times{{0.0, 1.0}}, StepCount{6}, strategy);
      sol.backward(cot);
    };
    if (variant == 0)
      run(Direct{});
    else
      run(Checkpointed{.every = 2});
    std::map<std::int64_t, std::pair<double, double>> forward;  // slot -> (t, fingerprint)
    for (const auto& c : f.calls) {
      if (c.phase != EvalPhase::forward) continue;
      CHECK_MESSAGE(forward.count(c.slot) == 0, "slot " << c.slot << " evaluated twice forward");
      forward[c.slot] = {c.t, c.h};
    }
    CHECK(forward.size() == 6 * 4);
    for (const auto& c : f.calls)  // recomputation (checkpointed) sees the forward slots' states again
      if (c.phase == EvalPhase::recompute) CHECK(forward.at(c.slot) == std::make_pair(c.t, c.h));
    CHECK(!f.vjps.empty());
    for (const auto& c : f.vjps) CHECK(forward.at(c.slot) == std::make_pair(c.t, c.h));
  }
}

TEST_CASE("ode errors: combinations that cannot run are refused with a clear message") {
  std::mt19937 rng(2);
  MlpField f = random_mlp(3, 4, rng);
  const Tensor y0 = random_tensor({2, 3}, rng);
  // A scalar-time field under per-row time with rows at different times.
  auto scalar_field = make_field([](const Tensor& h, double, Tensor& v) { ops::copy(v, h); });
  CHECK_THROWS_WITH_AS(integrate<Euler>(scalar_field, y0, PerRowTime<double>{{1.0, 2.0}}, StepCount{2}),
                       doctest::Contains("rows at different times"), flas::Error);
  // Non-monotonic output times.
  CHECK_THROWS_AS(integrate<Euler>(f, y0, Times{{0.0, 1.0, 0.5}}, StepSize{0.1}), flas::Error);
  // Step budget exhausted.
  CHECK_THROWS_WITH_AS(integrate<Dopri5>(f, y0, Times{{0.0, 10.0}}, Tolerances{.rtol = 1e-12, .atol = 1e-14, .max_steps = 5}),
                       doctest::Contains("max_steps"), flas::Error);
  // One cotangent per output.
  auto sol = solve<Euler, Direct>(f, y0, Times{{0.0, 1.0}}, StepSize{0.5});
  std::vector<Tensor> one{zeros({2, 3}, DType::F64)};
  CHECK_THROWS_AS(sol.backward(one), flas::Error);
  // Per-row time with the wrong number of rows.
  CHECK_THROWS_AS(integrate<Euler>(f, y0, PerRowTime<double>{{1.0, 2.0, 3.0}}, StepCount{2}), flas::Error);
}

namespace {

// g(s, y) = −f(−s, y): integrating g forward over [−t0, −t1] is integrating f backwards over [t0, t1].
struct Mirrored {
  using parameter_type = Tensor;
  MlpField& f;
  std::vector<double> neg;
  RowTimes flip(RowTimes s) {
    neg.resize(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) neg[i] = -s[i];
    return RowTimes(std::span<const double>(neg));
  }
  void operator()(const Tensor& h, RowTimes s, const EvalContext& ctx, Tensor& v) {
    f(h, flip(s), ctx, v);
    ops::scale(v, -1.0);
  }
  void vjp(const Tensor& h, RowTimes s, const EvalContext& ctx, const Tensor& cv, Tensor& ch, std::span<double> ct) {
    Tensor neg_cv = clone(cv);
    ops::scale(neg_cv, -1.0);
    f.vjp(h, flip(s), ctx, neg_cv, ch, ct);
    for (double& x : ct) x = -x;  // ∂/∂s = −∂/∂t
  }
  template <class V>
  void for_each_parameter(V&& v) {
    f.for_each_parameter(v);
  }
};

template <class Method, class Schedule>
void check_mirror(const Schedule& sch, double bound) {
  auto run = [&](bool mirrored) {
    Problem p = make_problem(21);
    Mirrored m{p.field, {}};
    auto finish = [&](auto sol) {
      Grad g{sol.backward(p.cot), gradients(p.field), sol.stats};
      return std::make_pair(std::move(sol.ys), std::move(g));
    };
    return mirrored ? finish(solve<Method, Direct>(m, p.y0, Times{{-0.9, -0.4, 0.0}}, sch))
                    : finish(solve<Method, Direct>(p.field, p.y0, Times{{0.9, 0.4, 0.0}}, sch));
  };
  const auto [ys_back, g_back] = run(false);
  const auto [ys_mirror, g_mirror] = run(true);
  for (std::size_t j = 0; j < ys_back.size(); ++j) CHECK(max_rel(ys_back[j], ys_mirror[j]) <= bound);
  CHECK(grad_diff(g_back, g_mirror) <= bound);
}

}  // namespace

TEST_CASE("ode time direction: a decreasing span is the mirrored increasing one, gradients included") {
  check_mirror<Rk4ThreeEighths>(StepSize{0.1}, 1e-15);
  check_mirror<Midpoint>(StepCount{5}, 1e-15);
  // dopri5, with the gradient through its first step in either direction.
  check_mirror<Dopri5>(Tolerances{.rtol = 1e-8, .atol = 1e-10}, 1e-14);
}

TEST_CASE("ode integrator: a reused workspace gives what a one-shot solve gives") {
  Problem p = make_problem(13);
  Integrator<Rk4Classic, MlpField, Tensor, Times, StepSize> reuse(p.field, p.y0, Times{p.ts}, StepSize{0.1});
  Integrator<Dopri5, MlpField, Tensor, Times, Tolerances> reuse5(p.field, p.y0, Times{p.ts}, Tolerances{});
  for (int round = 0; round < 3; ++round) {
    Tensor y0 = clone(p.y0);
    ops::scale(y0, 1.0 + 0.1 * round);
    const auto once = integrate<Rk4Classic>(p.field, y0, Times{p.ts}, StepSize{0.1});
    const auto& again = reuse.run(y0);
    REQUIRE(again.ys.size() == once.ys.size());
    for (std::size_t j = 0; j < once.ys.size(); ++j) CHECK(max_rel(again.ys[j], once.ys[j]) == 0.0);
    const auto once5 = integrate<Dopri5>(p.field, y0, Times{p.ts}, Tolerances{});
    const auto& again5 = reuse5.run(y0);
    for (std::size_t j = 0; j < once5.ys.size(); ++j) CHECK(max_rel(again5.ys[j], once5.ys[j]) == 0.0);
    CHECK(again5.stats.steps == once5.stats.steps);
  }
}
