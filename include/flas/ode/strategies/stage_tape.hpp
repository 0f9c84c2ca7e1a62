#pragma once
// The tape of a stretch of steps: the state y_k at each step and the stage inputs a step computes
// (stages 1..S−1; an FSAL method's last stage input is y_{k+1}), written there by the stepper directly so
// recording costs no copy. For dopri5's first-step gradient it also keeps the stage derivatives of the
// first step and of steps with outputs, and the first-step probe. It is a loop sink (forward_record.hpp);
// reset() reuses its storage for another stretch (checkpointed recomputation).
#include <array>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "flas/ode/explicit_rk.hpp"
#include "flas/ode/forward_record.hpp"

namespace flas::ode {

template <class Method, class State>
class StageTape {
 public:
  using Stepper = RkStepper<Method, State>;
  static constexpr int S = Method::tableau.stages;
  static constexpr bool fsal = Method::tableau.fsal;
  static constexpr int inner = Stepper::last_inner_stage;

  StageTape(const State& like, MemoryMeter& meter, bool keep_derivatives)
      : like_(&like), meter_(&meter), keep_derivatives_(keep_derivatives) {}

  // Start a stretch at step `first`; storage already allocated is reused.
  void reset(std::int64_t first) {
    first_ = first;
    for (auto& e : entries_) e.kept = false;
  }

  // The tape keeps its own copy of a stretch's first state.
  const State& initial(const State& y0) {
    State& y = entry(first_).y;
    ops::copy(y, y0);
    return y;
  }
  State& state(std::int64_t k) { return entry(k).y; }
  State* stage(std::int64_t k, int i) {
    Entry& e = entry(k);
    if (e.stages.empty()) {
      for (int j = 0; j < inner; ++j) e.stages.push_back(alloc());
    }
    return &e.stages[std::size_t(i - 1)];
  }
  void accepted(std::int64_t k, const Stepper& st) {
    if (keep_derivatives_ && k == 0) keep(k, st);
  }
  void output(std::int64_t k, const Stepper& st) {
    if (keep_derivatives_) keep(k, st);
  }
  // The first-step probe (input, derivative), kept apart from the stretch.
  State* probe(int j) {
    if (!keep_derivatives_) return nullptr;
    if (probe_.empty()) probe_.push_back(alloc()), probe_.push_back(alloc());
    return &probe_[std::size_t(j)];
  }

  // Stage inputs of step k: Y[0] = y_k, Y[i] = stage i, and for FSAL Y[S−1] = y_{k+1}.
  std::array<const State*, std::size_t(S)> inputs(std::int64_t k) {
    std::array<const State*, std::size_t(S)> Y{};
    Y[0] = &state(k);
    for (int i = 1; i <= inner; ++i) Y[std::size_t(i)] = stage(k, i);
    if constexpr (fsal) Y[std::size_t(S - 1)] = &state(k + 1);
    return Y;
  }
  // Stage derivatives kept for step k (empty if none were).
  std::span<const State* const> derivatives(std::int64_t k) {
    Entry& e = entry(k);
    if (!e.kept) return {};
    return std::span<const State* const>(e.kp.data(), e.kp.size());
  }
  const State* probe_input() const { return probe_.empty() ? nullptr : &probe_[0]; }
  const State* probe_output() const { return probe_.empty() ? nullptr : &probe_[1]; }

 private:
  struct Entry {
    State y;
    std::vector<State> stages;
    std::vector<State> k;
    std::array<const State*, std::size_t(S)> kp{};
    bool kept = false;
  };

  State alloc() {
    meter_->add(ops::bytes(*like_));
    return ops::empty_like(*like_);
  }
  Entry& entry(std::int64_t k) {
    FLAS_CHECK(k >= first_, "ode: tape asked for step ", k, " before its first step ", first_);
    const std::size_t i = std::size_t(k - first_);
    while (entries_.size() <= i) {
      entries_.emplace_back();
      entries_.back().y = alloc();
    }
    return entries_[i];
  }
  void keep(std::int64_t k, const Stepper& st) {
    Entry& e = entry(k);
    if (e.kept) return;
    if (e.k.empty())
      for (int j = 0; j < S; ++j) e.k.push_back(alloc());
    for (int j = 0; j < S; ++j) {
      ops::copy(e.k[std::size_t(j)], st.k(j));
      e.kp[std::size_t(j)] = &e.k[std::size_t(j)];
    }
    e.kept = true;
  }

  const State* like_;
  MemoryMeter* meter_;
  bool keep_derivatives_;
  std::int64_t first_ = 0;
  std::deque<Entry> entries_;
  std::vector<State> probe_;
};

}  // namespace flas::ode
