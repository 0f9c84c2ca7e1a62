#pragma once
// Looking inside a flow: the states h_k and velocities v_k of every Euler step at every position of
// one steered sequence, captured by a FlowSteering observer, and the figures the FLAS paper analyses:
//   curvature        cos(v_k, v_{k+1}) per position, averaged: 1 = a straight line, lower = curved;
//   velocity norm    |v_k| per step, averaged over positions;
//   token variation  1 - |mean over positions of v_k / |v_k||: 0 = one direction for every token,
//                    towards 1 = every token moves its own way;
//   concept cosine   cos(h_N - h_0, d) per position with a reference direction d (e.g. the concept's
//                    DiffMean vector): does the flow move along the concept's mean direction?
//   displacement     |h_{k+1} - h_k| per position and step (the heat map).
#include <cmath>
#include <span>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"
#include "flas/eval/residual_capture.hpp"

namespace flas::analysis {

// One row's trajectory: states[k] and velocities[k] are [S, H] (k = 0..N-1); final_state is h_N.
struct Trajectory {
  std::vector<std::vector<float>> states, velocities;
  std::vector<float> final_state;
  std::vector<float> times;  // t_k
  std::int64_t positions = 0, hidden = 0;
  std::size_t steps() const { return velocities.size(); }
  const float* at(const std::vector<float>& m, std::int64_t s) const { return m.data() + s * hidden; }
};

// A FlowSteering observer that keeps row `row` of the first (prefill) integration: N steps.
struct TrajectoryRecorder {
  std::int64_t row = 0;
  int steps = 0;  // N; later calls (decode tokens) are ignored
  Trajectory trajectory;

  template <class T>
  void on_step(int k, std::span<const float> t, const T& h, const T& v) {
    if (int(trajectory.velocities.size()) >= steps || k != int(trajectory.velocities.size())) return;
    const Tensor hh = eval::host_f32(h), vv = eval::host_f32(v);
    const std::int64_t S = hh.dim(1), H = hh.dim(2);
    trajectory.positions = S;
    trajectory.hidden = H;
    const float* hp = hh.data<float>() + row * S * H;
    const float* vp = vv.data<float>() + row * S * H;
    trajectory.states.emplace_back(hp, hp + S * H);
    trajectory.velocities.emplace_back(vp, vp + S * H);
    trajectory.times.push_back(t[std::size_t(row)]);
  }
};

// h_N from an Euler trajectory: h_{N-1} + dt * v_{N-1} with dt = T / N.
inline void finish_euler(Trajectory& tr, double flowtime) {
  FLAS_CHECK(tr.steps() >= 1, "trajectory: no steps were recorded (was the flow time 0?)");
  const double dt = flowtime / double(tr.steps());
  tr.final_state = tr.states.back();
  for (std::size_t i = 0; i < tr.final_state.size(); ++i) tr.final_state[i] += float(dt * tr.velocities.back()[i]);
}

namespace detail {
inline double dot(const float* a, const float* b, std::int64_t n) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}
inline double cosine(const float* a, const float* b, std::int64_t n) {
  const double na = std::sqrt(dot(a, a, n)), nb = std::sqrt(dot(b, b, n));
  return na > 0 && nb > 0 ? dot(a, b, n) / (na * nb) : 0.0;
}
}  // namespace detail

struct TrajectoryFigures {
  std::vector<double> curvature;        // N-1 values: mean over positions of cos(v_k, v_{k+1})
  std::vector<double> velocity_norm;    // N values
  std::vector<double> token_variation;  // N values
  std::vector<double> concept_cosine;   // per position (empty without a direction)
  double mean_concept_cosine = 0;
  std::vector<std::vector<double>> displacement;  // [S][N]: |h_{k+1} - h_k|
};

inline TrajectoryFigures trajectory_figures(const Trajectory& tr, std::span<const float> direction = {}) {
  FLAS_CHECK(tr.steps() >= 1 && !tr.final_state.empty(), "trajectory figures: an empty or unfinished trajectory");
  const std::int64_t S = tr.positions, H = tr.hidden;
  FLAS_CHECK(direction.empty() || std::int64_t(direction.size()) == H, "trajectory figures: a reference direction of ",
             direction.size(), " values for a hidden size of ", H);
  TrajectoryFigures f;
  for (std::size_t k = 0; k + 1 < tr.steps(); ++k) {
    double c = 0;
    for (std::int64_t s = 0; s < S; ++s) c += detail::cosine(tr.at(tr.velocities[k], s), tr.at(tr.velocities[k + 1], s), H);
    f.curvature.push_back(c / double(S));
  }
  for (std::size_t k = 0; k < tr.steps(); ++k) {
    double norm = 0;
    std::vector<double> mean_unit(std::size_t(H), 0.0);
    for (std::int64_t s = 0; s < S; ++s) {
      const float* v = tr.at(tr.velocities[k], s);
      const double n = std::sqrt(detail::dot(v, v, H));
      norm += n;
      if (n > 0)
        for (std::int64_t d = 0; d < H; ++d) mean_unit[std::size_t(d)] += double(v[d]) / n / double(S);
    }
    double r = 0;
    for (double x : mean_unit) r += x * x;
    f.velocity_norm.push_back(norm / double(S));
    f.token_variation.push_back(1.0 - std::sqrt(r));
  }
  f.displacement.assign(std::size_t(S), std::vector<double>(tr.steps(), 0.0));
  for (std::int64_t s = 0; s < S; ++s)
    for (std::size_t k = 0; k < tr.steps(); ++k) {
      const float* a = tr.at(tr.states[k], s);
      const float* b = k + 1 < tr.steps() ? tr.at(tr.states[k + 1], s) : tr.at(tr.final_state, s);
      double d2 = 0;
      for (std::int64_t d = 0; d < H; ++d) d2 += (double(b[d]) - a[d]) * (double(b[d]) - a[d]);
      f.displacement[std::size_t(s)][k] = std::sqrt(d2);
    }
  if (!direction.empty()) {
    std::vector<float> disp(static_cast<std::size_t>(H));
    for (std::int64_t s = 0; s < S; ++s) {
      for (std::int64_t d = 0; d < H; ++d) disp[std::size_t(d)] = tr.at(tr.final_state, s)[d] - tr.at(tr.states[0], s)[d];
      f.concept_cosine.push_back(detail::cosine(disp.data(), direction.data(), H));
      f.mean_concept_cosine += f.concept_cosine.back() / double(S);
    }
  }
  return f;
}

}  // namespace flas::analysis
