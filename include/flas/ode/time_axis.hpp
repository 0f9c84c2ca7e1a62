#pragma once
// Where a solve's time lives. The solver always advances one scalar "solver time" s; a clock maps it to
// the time each row of the state sees and to each row's step size.
//
//   Times{ts}                    every row at the solver's time (t = s); outputs at ts.
//   PerRowTime<Real>{T, s}       FLAS's per-row flow time (DESIGN.md §3): row b integrates t ∈ [0, T_b] as
//                                s ∈ [0, 1] of T_b·v(h, s·T_b); outputs at the s values (default {0, 1}).
//                                With StepCount{N} a row's step is dt_b = Real(T_b / N) and its k-th time
//                                t_b,k = Real(k·dt_b), so Euler is h ← h + dt_b·v(h, t_b,k), the FLAS
//                                update bit for bit in Real = float.
//
// A clock hands out RowValues views into buffers it owns; a view stays valid until the same kind of call
// (step, stage, at) is made again.
#include <cstdint>
#include <utility>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/ode/row_values.hpp"
#include "flas/ode/schedule.hpp"

namespace flas::ode {

// One step as a stepper sees it: solver time, and each row's start, size and end.
struct StepTimes {
  double s0 = 0, s1 = 0, ds = 0;
  RowValues t0, dt, t1;
};

class SharedClock {
 public:
  static constexpr bool per_row = false;
  void bind(std::size_t /*rows*/) {}
  StepTimes step(const Grid* /*grid*/, std::int64_t /*k*/, double s0, double s1, double ds) {
    s0_ = s0, s1_ = s1, ds_ = ds;
    return {s0, s1, ds, RowValues(s0_), RowValues(ds_), RowValues(s1_)};
  }
  // Stage time t0 + c·dt; a stage at c = 1 is evaluated at t1 itself (torchdiffeq).
  FLAS_ODE_STRICT_FP RowValues stage(const StepTimes& st, double c) {
    if (c == 1.0) return st.t1;
    const double cdt = c * st.ds;
    stage_ = st.s0 + cdt;
    return RowValues(stage_);
  }
  RowValues at(double s) {
    at_ = s;
    return RowValues(at_);
  }
  // d(row time)/d(solver time).
  RowValues rate() const { return RowValues(one_); }

 private:
  double s0_ = 0, s1_ = 0, ds_ = 0, stage_ = 0, at_ = 0;
  double one_ = 1.0;
};

template <class Real>
class RowClock {
 public:
  static constexpr bool per_row = true;
  explicit RowClock(std::vector<double> T) : T_(std::move(T)) {}

  void bind(std::size_t rows) {
    FLAS_CHECK(T_.size() == rows, "ode: per-row time has ", T_.size(), " end times for a state of ", rows, " rows");
    t0_.resize(rows), dt_.resize(rows), t1_.resize(rows), stage_.resize(rows), at_.resize(rows);
  }

  FLAS_ODE_STRICT_FP StepTimes step(const Grid* grid, std::int64_t k, double s0, double s1, double ds) {
    const std::size_t rows = T_.size();
    if (grid && grid->uniform_n > 0) {
      // Equal steps: the FLAS rule, dt_b = R(T_b·span/N), t_b,k = R(T_b·s_start + k·dt_b).
      const double sb = grid->t.front(), span = grid->t.back() - grid->t.front();
      const double n = double(grid->uniform_n);
      for (std::size_t b = 0; b < rows; ++b) {
        const double d = round(T_[b] * span / n);
        const double origin = T_[b] * sb;
        const double k0 = double(k) * d, k1 = double(k + 1) * d;
        dt_[b] = d;
        t0_[b] = round(origin + k0);
        t1_[b] = round(origin + k1);
      }
    } else {
      for (std::size_t b = 0; b < rows; ++b) {
        t0_[b] = round(T_[b] * s0);
        t1_[b] = round(T_[b] * s1);
        dt_[b] = round(T_[b] * ds);
      }
    }
    return {s0, s1, ds, RowValues(t0_), RowValues(dt_), RowValues(t1_)};
  }
  FLAS_ODE_STRICT_FP RowValues stage(const StepTimes& st, double c) {
    if (c == 0.0) return st.t0;
    if (c == 1.0) return st.t1;
    for (std::size_t b = 0; b < T_.size(); ++b) {
      const double cdt = c * st.dt[b];
      stage_[b] = round(st.t0[b] + cdt);
    }
    return RowValues(stage_);
  }
  FLAS_ODE_STRICT_FP RowValues at(double s) {
    for (std::size_t b = 0; b < T_.size(); ++b) at_[b] = round(T_[b] * s);
    return RowValues(at_);
  }
  RowValues rate() const { return RowValues(T_); }

 private:
  static double round(double x) { return double(Real(x)); }
  std::vector<double> T_, t0_, dt_, t1_, stage_, at_;
};

// Output times on one clock shared by every row.
struct Times {
  std::vector<double> ts;
  using clock_type = SharedClock;
  clock_type clock() const { return {}; }
  const std::vector<double>& outputs() const { return ts; }
};

// Per-row flow time: row b runs t ∈ [0, T_b]; outputs at solver times s (default: start and end).
template <class Real = float>
struct PerRowTime {
  std::vector<double> T;
  std::vector<double> s = {0.0, 1.0};
  using clock_type = RowClock<Real>;
  clock_type clock() const { return clock_type(T); }
  const std::vector<double>& outputs() const { return s; }
};

template <class A>
concept TimeAxis = requires(const A& a) {
  typename A::clock_type;
  a.clock();
  { a.outputs() } -> std::convertible_to<const std::vector<double>&>;
};

}  // namespace flas::ode
