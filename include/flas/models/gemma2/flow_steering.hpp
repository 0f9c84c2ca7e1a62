#pragma once
// Steering a Gemma-2 model with a flow: a steering tap that, at the output of layer L, integrates
// dh/dt = v(h, t, c) from t = 0 to each row's flow time T with N fixed steps of an explicit
// Runge-Kutta method of the ODE core (Euler by default), at every position, in prefill and decode.
// Row b's Euler step k is dt_b = f32(T_b / N), t_k = f32(k·dt_b), h ← h + dt_b·v(h, t_k, c_b): the
// reference update to the bit. Each evaluation slot (step × stage) keeps its own self-attention KV
// cache, so decode sees the slot's states of earlier positions exactly as a full-sequence pass does.
// T = 0 rows are exactly unsteered.
#include <span>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/attention.hpp"
#include "flas/models/gemma2/steering_tap.hpp"
#include "flas/ode/algebra_tensor.hpp"
#include "flas/ode/solve.hpp"

namespace flas::gemma2 {

// Sees each step of the integration: h_k and v_k = v(h_k, t_k) of the new tokens, and each row's t_k.
struct NoFlowObserver {
  template <class T>
  void on_step(int, std::span<const float>, const T&, const T&) {}
};

enum class FlowSolver : std::uint8_t { euler, midpoint, rk4 };

inline FlowSolver flow_solver_from_name(std::string_view name) {
  if (name == "euler") return FlowSolver::euler;
  if (name == "midpoint") return FlowSolver::midpoint;
  if (name == "rk4") return FlowSolver::rk4;
  fail("unknown flow solver '", name, "' (expected euler, midpoint or rk4)");
}

struct SteeringOptions {
  int layer = 0;
  int steps = 3;                 // N
  std::vector<float> flowtime;   // T per row
  std::vector<int> only_steps;   // analysis: apply only these step indices (empty: all)
  float displacement_scale = 1;  // analysis: h0 + s·(h_N − h0)
  FlowSolver solver = FlowSolver::euler;
};

// `Field` provides Conditioning, SlotCache, new_slot_cache(B, capacity), parameter_dtype() and
// velocity(h, t_rows, conditioning, TokenLayout, SlotCache&).
template <Backend B, class Field, class Observer = NoFlowObserver>
class FlowSteering {
 public:
  FlowSteering(const Field& field, typename Field::Conditioning cond, SteeringOptions opt, Observer obs = {})
      : field_(field), cond_(std::move(cond)), opt_(std::move(opt)), obs_(std::forward<Observer>(obs)) {
    FLAS_CHECK(opt_.steps >= 1, "steering: the number of flow steps must be at least 1, got ", opt_.steps);
    for (float T : opt_.flowtime)
      FLAS_CHECK(std::isfinite(T) && T >= 0, "steering: flow time must be finite and >= 0, got ", T);
    for (int k : opt_.only_steps)
      FLAS_CHECK(0 <= k && k < opt_.steps, "steering: step ", k, " is outside 0..", opt_.steps - 1);
  }

  bool wants(int layer) const { return layer == opt_.layer; }
  const Observer& observer() const { return obs_; }
  Observer& observer() { return obs_; }

  void operator()(TapSite<B>& site) {
    const std::int64_t Bn = site.h.dim(0);
    FLAS_CHECK(std::int64_t(opt_.flowtime.size()) == Bn, "steering: ", opt_.flowtime.size(),
               " flow times for a batch of ", Bn, " rows");
    bool any = false;
    for (float T : opt_.flowtime) any = any || T != 0.0f;
    if (!any) return;  // exactly the base model
    if (cache_batch_ != Bn || cache_capacity_ != site.capacity) {
      caches_.clear();
      cache_batch_ = Bn;
      cache_capacity_ = site.capacity;
    }
    switch (opt_.solver) {
      case FlowSolver::euler: integrate<ode::Euler>(site); break;
      case FlowSolver::midpoint: integrate<ode::Midpoint>(site); break;
      case FlowSolver::rk4: integrate<ode::Rk4Classic>(site); break;
    }
  }

 private:
  // A bf16 flow rounds its step and times to bf16, as the reference does when it runs in bf16.
  bool bf16_time() const { return field_.parameter_dtype() == DType::BF16; }

  // The field as the ODE core sees it: one slot cache per (step, stage).
  struct SlotField {
    FlowSteering& s;
    const TokenLayout& at;
    static constexpr bool needs_fixed_slots = true;
    void operator()(const tensor_t<B>& h, ode::RowTimes t, const ode::EvalContext& ctx, tensor_t<B>& v) {
      std::vector<float> tr(static_cast<std::size_t>(h.dim(0)));
      for (std::size_t b = 0; b < tr.size(); ++b) tr[b] = s.bf16_time() ? round_to_bf16(float(t[b])) : float(t[b]);
      while (std::int64_t(s.caches_.size()) <= ctx.slot()) s.caches_.push_back(s.field_.new_slot_cache(s.cache_batch_, s.cache_capacity_));
      auto out = s.field_.velocity(h, tr, s.cond_, at, s.caches_[std::size_t(ctx.slot())]);
      const auto& only = s.opt_.only_steps;
      if (!only.empty() && std::find(only.begin(), only.end(), int(ctx.step)) == only.end()) B::fill(out, 0.0f);
      B::copy(v, out);
    }
  };

  // Passes (k, t_k per row, h_k, v_k) on to the flow observer.
  struct StepForwarder {
    FlowSteering& s;
    std::vector<float> dt;
    void operator()(std::int64_t k, double, const tensor_t<B>& h, const tensor_t<B>& v) {
      std::vector<float> t(dt.size());
      for (std::size_t b = 0; b < t.size(); ++b) t[b] = float(k) * dt[b];
      s.obs_.on_step(int(k), std::span<const float>(t), h, v);
    }
  };

  template <class Method>
  void integrate(TapSite<B>& site) {
    const TokenLayout at{site.positions, site.past, site.capacity, site.key_valid};
    std::vector<double> T(opt_.flowtime.begin(), opt_.flowtime.end());
    std::vector<float> dt(T.size());
    for (std::size_t b = 0; b < T.size(); ++b) {
      dt[b] = float(T[b] / opt_.steps);
      if (bf16_time()) {  // T' with f32(T'/N) = bf16(T/N) exactly
        dt[b] = round_to_bf16(dt[b]);
        T[b] = double(dt[b]) * opt_.steps;
      }
    }
    SlotField field{*this, at};
    const ode::PerRowTime<float> axis{T};
    const ode::StepCount schedule{opt_.steps};
    auto finish = [&](const tensor_t<B>& hN) {
      if (opt_.displacement_scale == 1.0f) {
        B::copy(site.h, hN);
        return;
      }
      auto d = tensor_t<B>::empty(hN.shape(), B::activation_dtype);  // h0 + s·(h_N − h0)
      B::copy(d, hN);
      B::axpy(d, -1.0f, site.h);
      B::axpy(site.h, opt_.displacement_scale, d);
    };
    if constexpr (std::is_same_v<Observer, NoFlowObserver>) {
      finish(ode::integrate<Method>(field, site.h, axis, schedule).ys.back());
    } else {
      finish(ode::integrate<Method>(field, site.h, axis, schedule, StepForwarder{*this, dt}).ys.back());
    }
  }

  const Field& field_;
  typename Field::Conditioning cond_;
  SteeringOptions opt_;
  Observer obs_;
  std::vector<typename Field::SlotCache> caches_;
  std::int64_t cache_batch_ = -1, cache_capacity_ = -1;
};

}  // namespace flas::gemma2
