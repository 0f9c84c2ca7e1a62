// flas::ode on FLAS-sized states: [B = 4, S = 256, H = 2304] f32 flas::Tensor (9.4 MB), a cheap field
// (v = −a·h + t_row, one read and one write), per-row flow time as FLAS uses it.
//  - BM_memory_pass: one copy of the state from and to DRAM (read + write; buffers rotate through more
//    than the L3 so that, like a solve's working set, they do not stay cached): the unit of comparison.
//  - BM_step/<method>: steps/s of each stepper (a reused ode::Integrator, 16 steps per run); counters:
//    the state touches a step needs (2 per field call, terms + base + result per stage combination, the
//    error estimate and its norm, from the tableau, plus the run's two output copies spread over its
//    steps), their ideal time, and the rest, the solver's own overhead, in memory passes. A touch costs
//    what it costs in a hand-written loop y[i] = x[i] + c·k[i] from DRAM (touch_ms = its time / 3; unlike
//    memcpy's streaming stores, ordinary stores read the line first).
//  - BM_solve_once/euler: the same through a one-shot integrate() (allocations and first-touch page
//    faults included).
//  - BM_bookkeeping/<method>: the same solve on a [4, 1, 8] state, where the kernels cost nothing: the
//    solver's own per-step work (dispatch, clock, contexts), as a fraction of one pass over the big state.
//  - BM_handwritten/euler: the FLAS update written by hand (field, then h += dt_b·v in place), the
//    floor a stepper is compared with.
//  - BM_gradient/<strategy>: forward + backward of 16 Euler steps; counters: peak bytes held for the
//    gradient (MB and in states).
// Runs in a few seconds.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <span>
#include <string_view>

#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/ode.hpp"

namespace {

using namespace flas;
using namespace flas::ode;

constexpr std::int64_t B = 4, S = 256, H = 2304;

Tensor make_state(std::int64_t s = S, std::int64_t h = H) {
  Tensor t = Tensor::empty({B, s, h}, DType::F32);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = float((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
  return t;
}

// v = −a·h + t_row: the cheapest field that still reads the state and the row's time.
struct CheapField {
  using parameter_type = Tensor;
  Tensor a = Tensor::empty({H}, DType::F32), ga = zeros({H}, DType::F32);
  CheapField() {
    for (std::int64_t i = 0; i < H; ++i) a.data<float>()[i] = 0.5f + 1e-4f * float(i);
  }
  void operator()(const Tensor& h, RowTimes t, const EvalContext&, Tensor& v) {
    const float* hp = h.data<float>();
    const float* ap = a.data<float>();
    float* vp = v.data<float>();
    const std::int64_t n = h.dim(-1), rows = h.numel() / n / B;
    for (std::int64_t b = 0; b < B; ++b) {
      const float tb = float(t[std::size_t(b)]);
      for (std::int64_t s = 0; s < rows; ++s) {
        const std::int64_t o = (b * rows + s) * n;
        for (std::int64_t i = 0; i < n; ++i) vp[o + i] = tb - ap[i] * hp[o + i];
      }
    }
  }
  void vjp(const Tensor& h, RowTimes, const EvalContext&, const Tensor& cv, Tensor& ch, std::span<double> ct) {
    const float *hp = h.data<float>(), *ap = a.data<float>(), *cp = cv.data<float>();
    float* op = ch.data<float>();
    float* gp = ga.data<float>();
    for (std::int64_t b = 0; b < B; ++b) {
      double st = 0;
      for (std::int64_t s = 0; s < S; ++s) {
        const std::int64_t o = (b * S + s) * H;
        for (std::int64_t i = 0; i < H; ++i) {
          op[o + i] = -ap[i] * cp[o + i];
          gp[i] -= cp[o + i] * hp[o + i];
          st += cp[o + i];
        }
      }
      if (!ct.empty()) ct[std::size_t(b)] = st;
    }
  }
  template <class V>
  void for_each_parameter(V&& visit) {
    visit(std::string_view("a"), a, ga);
  }
};

// Copies state i into state i + 1 of a ring of 8 (75 MB, more than the L3): every copy reads and writes DRAM.
struct Ring {
  std::vector<Tensor> t;
  std::size_t i = 0;
  Ring() {
    for (int k = 0; k < 8; ++k) t.push_back(make_state());
  }
  void copy() {
    std::memcpy(t[(i + 1) % t.size()].raw(), t[i].raw(), t[i].bytes());
    benchmark::DoNotOptimize(t[(i + 1) % t.size()].raw());
    i = (i + 1) % t.size();
  }
};

// One touch: a third of y = x + c·k over states in DRAM, the loop the solver's kernels are made of.
double touch_seconds() {
  static const double s = [] {
    Ring ring;
    double best = 1e9;
    for (int r = 0; r < 24; ++r) {
      const std::size_t i = ring.i;
      float* __restrict y = ring.t[(i + 1) % 8].data<float>();
      const float* __restrict x = ring.t[i].data<float>();
      const float* __restrict k = ring.t[(i + 2) % 8].data<float>();
      const auto t0 = std::chrono::steady_clock::now();
      for (std::int64_t j = 0; j < B * S * H; ++j) y[j] = x[j] + 0.5f * k[j];
      benchmark::DoNotOptimize(y);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      ring.i = (i + 3) % 8;
    }
    return best / 3;
  }();
  return s;
}

double pass_seconds() {  // best of a few DRAM copies of the state
  static const double s = [] {
    Ring ring;
    double best = 1e9;
    for (int r = 0; r < 24; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ring.copy();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }();
  return s;
}

// State touches (one tensor read or written) per step: 2 per field call, and per stage combination the
// nonzero terms, the base and the result; adaptive steps add the error estimate and its norm.
template <class Method>
double touches_per_step() {
  constexpr auto& tab = Method::tableau;
  double n = 0;
  for (int i = tab.fsal ? 1 : 0; i < tab.stages; ++i) {
    n += 2;
    if (i > 0) {
      n += 2;
      for (int j = 0; j < i; ++j) n += tab.a[std::size_t(i)][std::size_t(j)] != 0;
    }
  }
  if (!tab.fsal) {
    n += 2;
    for (double b : tab.b) n += b != 0;
  }
  if (tab.embedded) {
    n += 1;
    for (double e : tab.e) n += e != 0;
    n += 3;
  }
  return n;
}

constexpr std::int64_t steps = 16;

// Constant steps for dopri5: every attempt accepted, dt never changed.
const Tolerances constant_steps{.rtol = 1e30, .atol = 1e30, .first_step = 1.0 / steps, .ifactor = 1.0};

template <class Method>
auto schedule_for() {
  if constexpr (is_adaptive<Method>)
    return constant_steps;
  else
    return StepCount{steps};
}

void report(benchmark::State& state, double touches, double seconds_per_step) {
  const double pass = pass_seconds();
  const double ideal = touches * touch_seconds();
  state.counters["steps/s"] = benchmark::Counter(double(state.iterations() * steps), benchmark::Counter::kIsRate);
  state.counters["touches"] = touches;
  state.counters["pass_ms"] = pass * 1e3;
  state.counters["touch_ms"] = touch_seconds() * 1e3;
  state.counters["ideal_ms"] = ideal * 1e3;
  state.counters["step_ms"] = seconds_per_step * 1e3;
  state.counters["overhead_passes"] = (seconds_per_step - ideal) / pass;
}

template <class Method>
void BM_step(benchmark::State& state) {
  CheapField f;
  const Tensor h = make_state();
  const PerRowTime<float> axis{{2.0, 1.5, 1.0, 0.5}};
  Integrator<Method, CheapField, Tensor, PerRowTime<float>, decltype(schedule_for<Method>())> run(
      f, h, axis, schedule_for<Method>());
  run.run(h);  // warm: buffers allocated and touched
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(run.run(h).ys.back().raw());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, touches_per_step<Method>() + 4.0 / steps, seconds / double(state.iterations() * steps));
}

template <class Method>
void BM_bookkeeping(benchmark::State& state) {
  CheapField f;
  const Tensor h = make_state(1, 8);
  const PerRowTime<float> axis{{2.0, 1.5, 1.0, 0.5}};
  Integrator<Method, CheapField, Tensor, PerRowTime<float>, decltype(schedule_for<Method>())> run(
      f, h, axis, schedule_for<Method>());
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(run.run(h).ys.back().raw());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double per_step = seconds / double(state.iterations() * steps);
  state.counters["step_ns"] = per_step * 1e9;
  state.counters["pass_fraction"] = per_step / pass_seconds();
}

void BM_solve_once(benchmark::State& state) {
  CheapField f;
  const Tensor h = make_state();
  const PerRowTime<float> axis{{2.0, 1.5, 1.0, 0.5}};
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(integrate<Euler>(f, h, axis, StepCount{steps}).ys.back().raw());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, touches_per_step<Euler>() + 4.0 / steps, seconds / double(state.iterations() * steps));
}

void BM_handwritten_euler(benchmark::State& state) {
  CheapField f;
  const Tensor h0 = make_state();
  Tensor h = make_state(), v = make_state();
  const std::vector<double> T{2.0, 1.5, 1.0, 0.5};
  std::vector<double> t(B);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(h.raw(), h0.raw(), h.bytes());
    for (std::int64_t k = 0; k < steps; ++k) {
      float dt[B];
      for (std::int64_t b = 0; b < B; ++b) dt[b] = float(T[std::size_t(b)]) / float(steps), t[std::size_t(b)] = float(k) * dt[b];
      f(h, RowTimes(std::span<const double>(t)), EvalContext{}, v);
      float* __restrict hp = h.data<float>();
      const float* __restrict vp = v.data<float>();
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t i = b * S * H; i < (b + 1) * S * H; ++i) hp[i] = hp[i] + dt[b] * vp[i];
    }
    benchmark::DoNotOptimize(h.raw());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(state, touches_per_step<Euler>() + 2.0 / steps, seconds / double(state.iterations() * steps));
}

void BM_memory_pass(benchmark::State& state) {
  Ring ring;
  for (auto _ : state) ring.copy();
  state.SetBytesProcessed(state.iterations() * std::int64_t(ring.t[0].bytes()) * 2);
}

template <class Strategy>
void BM_gradient(benchmark::State& state, Strategy strategy) {
  CheapField f;
  const Tensor h = make_state();
  const PerRowTime<float> axis{{2.0, 1.5, 1.0, 0.5}};
  std::vector<Tensor> cot{zeros(h.shape(), DType::F32), make_state()};
  std::size_t peak = 0;
  for (auto _ : state) {
    auto sol = solve<Euler>(f, h, axis, StepCount{steps}, strategy);
    benchmark::DoNotOptimize(sol.backward(cot));
    peak = sol.stats.gradient_bytes_peak;
  }
  state.counters["gradient_MB"] = double(peak) / 1e6;
  state.counters["states"] = double(peak) / double(h.bytes());
}

}  // namespace

BENCHMARK(BM_memory_pass)->Unit(benchmark::kMillisecond)->MinTime(0.1);
BENCHMARK(BM_handwritten_euler)->Name("BM_handwritten/euler")->Unit(benchmark::kMillisecond)->Iterations(6);
BENCHMARK(BM_solve_once)->Name("BM_solve_once/euler")->Unit(benchmark::kMillisecond)->Iterations(6);
BENCHMARK(BM_step<Euler>)->Name("BM_step/euler")->Unit(benchmark::kMillisecond)->Iterations(6);
BENCHMARK(BM_step<Midpoint>)->Name("BM_step/midpoint")->Unit(benchmark::kMillisecond)->Iterations(4);
BENCHMARK(BM_step<Rk4Classic>)->Name("BM_step/rk4")->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_step<Rk4ThreeEighths>)->Name("BM_step/rk4_38")->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_step<Dopri5>)->Name("BM_step/dopri5")->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_bookkeeping<Euler>)->Name("BM_bookkeeping/euler")->MinTime(0.05);
BENCHMARK(BM_bookkeeping<Midpoint>)->Name("BM_bookkeeping/midpoint")->MinTime(0.05);
BENCHMARK(BM_bookkeeping<Rk4Classic>)->Name("BM_bookkeeping/rk4")->MinTime(0.05);
BENCHMARK(BM_bookkeeping<Rk4ThreeEighths>)->Name("BM_bookkeeping/rk4_38")->MinTime(0.05);
BENCHMARK(BM_bookkeeping<Dopri5>)->Name("BM_bookkeeping/dopri5")->MinTime(0.05);
BENCHMARK_CAPTURE(BM_gradient, direct, Direct{})->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(BM_gradient, checkpointed_every4, Checkpointed{.every = 4})->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(BM_gradient, checkpointed_binomial2, Checkpointed{.snapshots = 2})->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK_CAPTURE(BM_gradient, backsolve, Backsolve{})->Unit(benchmark::kMillisecond)->Iterations(2);

BENCHMARK_MAIN();
