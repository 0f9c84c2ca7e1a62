#pragma once
// Steering a Gemma-2 model with a flow: a steering tap that, at the output of layer L, integrates
// dh/dt = v(h, t, c) from t = 0 to each row's flow time T with N fixed steps, at every position, in
// prefill and decode. Euler step k of row b: dt_b = f32(T_b / N), t_k = f32(k·dt_b),
// h ← h + dt_b·v(h, t_k, c_b) — the reference update to the bit. Each evaluation slot (step) keeps its
// own self-attention KV cache, so decode sees the step-k states of earlier positions exactly as a
// full-sequence pass does. T = 0 rows are left exactly unsteered.
#include <span>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/models/gemma2/attention.hpp"
#include "flas/models/gemma2/steering_tap.hpp"

namespace flas::gemma2 {

// Sees each step of the integration: h_k and v_k of the new tokens, and each row's t_k.
struct NoFlowObserver {
  template <class T>
  void on_step(int, std::span<const float>, const T&, const T&) {}
};

struct SteeringOptions {
  int layer = 0;
  int steps = 3;                 // N
  std::vector<float> flowtime;   // T per row
  std::vector<int> only_steps;   // analysis: apply only these step indices (empty: all)
  float displacement_scale = 1;  // analysis: h0 + s·(h_N − h0)
};

// `Field` provides Conditioning, SlotCache, new_slot_cache(B, capacity) and
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
    if (!any && opt_.displacement_scale == 1.0f) return;  // exactly the base model
    ensure_caches(Bn, site.capacity);
    const TokenLayout at{site.positions, site.past, site.capacity, site.key_valid};
    std::vector<float> dt(static_cast<std::size_t>(Bn)), t(static_cast<std::size_t>(Bn));
    const bool bf16_time = field_.parameter_dtype() == DType::BF16;
    auto in_flow_dtype = [&](float x) { return bf16_time ? round_to_bf16(x) : x; };
    for (std::size_t b = 0; b < dt.size(); ++b) dt[b] = in_flow_dtype(opt_.flowtime[b] / float(opt_.steps));
    tensor_t<B> h0;
    if (opt_.displacement_scale != 1.0f) {
      h0 = tensor_t<B>::empty(site.h.shape(), B::activation_dtype);
      B::copy(h0, site.h);
    }
    for (int k = 0; k < opt_.steps; ++k) {
      for (std::size_t b = 0; b < t.size(); ++b) t[b] = in_flow_dtype(float(k) * dt[b]);
      auto v = field_.velocity(site.h, t, cond_, at, caches_[std::size_t(k)]);
      obs_.on_step(k, std::span<const float>(t), site.h, v);
      if (!opt_.only_steps.empty() && std::find(opt_.only_steps.begin(), opt_.only_steps.end(), k) == opt_.only_steps.end())
        continue;
      for (std::int64_t b = 0; b < Bn; ++b) {
        auto row = site.h[b];
        B::axpy(row, dt[std::size_t(b)], v[b]);
      }
    }
    if (opt_.displacement_scale != 1.0f) {  // h = h0 + s·(h − h0)
      B::axpy(site.h, -1.0f, h0);
      B::scale(site.h, opt_.displacement_scale);
      B::add(site.h, h0);
    }
  }

 private:
  void ensure_caches(std::int64_t batch, std::int64_t capacity) {
    if (cache_batch_ == batch && cache_capacity_ == capacity) return;
    caches_.clear();
    for (int k = 0; k < opt_.steps; ++k) caches_.push_back(field_.new_slot_cache(batch, capacity));
    cache_batch_ = batch;
    cache_capacity_ = capacity;
  }

  const Field& field_;
  typename Field::Conditioning cond_;
  SteeringOptions opt_;
  Observer obs_;
  std::vector<typename Field::SlotCache> caches_;
  std::int64_t cache_batch_ = -1, cache_capacity_ = -1;
};

}  // namespace flas::gemma2
