#pragma once
// Observers: called after every (accepted) step as obs(step, t, y, v), with the state at the step's start,
// its solver time and the velocity there (the step's first stage) — FLAS's trajectory pairs (h_k, v_k).
// Returning false stops the solve after that step (early stop); returning void never stops. An observer
// may also have finish(t, y), called with the final state. The default NoObserver compiles to nothing.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "flas/ode/algebra_ops.hpp"

namespace flas::ode {

struct NoObserver {
  template <class State>
  void operator()(std::int64_t, double, const State&, const State&) const {}
};

template <class Obs, class State>
bool notify(Obs& obs, std::int64_t step, double t, const State& y, const State& v) {
  if constexpr (std::is_same_v<std::remove_cvref_t<Obs>, NoObserver>) {
    return true;
  } else if constexpr (std::is_same_v<decltype(obs(step, t, y, v)), bool>) {
    return obs(step, t, y, v);
  } else {
    obs(step, t, y, v);
    return true;
  }
}

template <class Obs, class State>
void notify_finish(Obs& obs, double t, const State& y) {
  if constexpr (requires { obs.finish(t, y); }) obs.finish(t, y);
}

// Keeps (t, y, v) of every step and the final (t, y): copies, so memory grows with the step count.
template <class State>
class TrajectoryObserver {
 public:
  struct Point {
    std::int64_t step;
    double t;
    State y, v;
  };
  void operator()(std::int64_t step, double t, const State& y, const State& v) {
    Point p{step, t, ops::empty_like(y), ops::empty_like(v)};
    ops::copy(p.y, y);
    ops::copy(p.v, v);
    points.push_back(std::move(p));
  }
  void finish(double t, const State& y) {
    final_t = t;
    final_y = ops::empty_like(y);
    ops::copy(final_y, y);
    finished = true;
  }
  std::vector<Point> points;
  double final_t = 0;
  State final_y{};
  bool finished = false;
};

// Prints "step k  t  ‖v‖_max  elapsed" every `every` steps.
class ProgressObserver {
 public:
  explicit ProgressObserver(std::int64_t every = 1, std::FILE* out = stderr) : every_(every), out_(out) {}
  template <class State>
  void operator()(std::int64_t step, double t, const State&, const State& v) {
    if (every_ <= 0 || step % every_ != 0) return;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(out_, "ode: step %lld  t %.6g  max|v| %.4g  %.1f ms\n", static_cast<long long>(step), t,
                 ops::max_abs(v), ms);
  }

 private:
  std::int64_t every_;
  std::FILE* out_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Stops once pred(step, t, y, v) returns true (the step it returns true for is kept).
template <class Pred>
class StopWhen {
 public:
  explicit StopWhen(Pred pred) : pred_(std::move(pred)) {}
  template <class State>
  bool operator()(std::int64_t step, double t, const State& y, const State& v) {
    stopped = pred_(step, t, y, v);
    return !stopped;
  }
  bool stopped = false;

 private:
  Pred pred_;
};

// Several observers as one: all are called; the solve stops if any asks to.
template <class... Obs>
class Observers {
 public:
  explicit Observers(Obs&... obs) : obs_(obs...) {}
  template <class State>
  bool operator()(std::int64_t step, double t, const State& y, const State& v) {
    bool go_on = true;  // every observer is called, whatever the others answer
    std::apply([&](auto&... o) { ((go_on = notify(o, step, t, y, v) && go_on), ...); }, obs_);
    return go_on;
  }
  template <class State>
  void finish(double t, const State& y) {
    std::apply([&](auto&... o) { (notify_finish(o, t, y), ...); }, obs_);
  }

 private:
  std::tuple<Obs&...> obs_;
};

}  // namespace flas::ode
