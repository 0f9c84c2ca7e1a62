#pragma once
// What a solver asks of a velocity field (DESIGN.md §3).
//
//   VelocityField<F, S>:        f(h, t, ctx, v) writes v = f(h, t) into v. t holds one time per row of h
//                               (RowTimes; uniform when every row shares the clock).
//   DifferentiableField<F, S>:  additionally
//       using parameter_type = P;                 // a type with a StateAlgebra (flas::Tensor, Eigen, ...)
//       f.vjp(h, t, ctx, cot_v, cot_h, cot_t);    // for (h, t, ctx) of an earlier f(h, t, ctx, v) call:
//                                                 //   cot_h  = cot_vᵀ·∂v/∂h                  (overwritten)
//                                                 //   grads += cot_vᵀ·∂v/∂θ                  (accumulated)
//                                                 //   cot_t[row] = cot_vᵀ·∂v/∂t_row when cot_t is not empty
//       f.for_each_parameter(visit);              // visit(std::string_view name, P& value, P& grad)
//
// The context names the evaluation slot (step × stage), so a field that keeps per-step state (FLAS's
// per-Euler-step KV caches) knows which step and stage it serves. A field declaring
//   static constexpr bool needs_fixed_slots = true;
// is refused by adaptive methods (their slot count is unknown in advance) and by backsolve (whose
// backward evaluations are not the forward slots). A field that cannot differentiate with respect to t
// declares `static constexpr bool provides_time_vjp = false;` (only dopri5's first-step gradient needs it).
#include <cstdint>
#include <span>
#include <string_view>

#include "flas/ode/algebra.hpp"
#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/row_values.hpp"

namespace flas::ode {

enum class EvalPhase : std::uint8_t {
  forward,           // the solve itself
  first_step_probe,  // dopri5's extra evaluation while choosing the first step
  recompute,         // checkpointed: a segment run again to rebuild its stage inputs
  adjoint,           // backsolve: the augmented system integrated backwards
};

struct EvalContext {
  std::int64_t step = 0;         // the step this evaluation belongs to (stage 0 of an FSAL step is the
                                 // last stage of the step before; the first one is step 0, stage 0)
  int stage = 0;                 // stage within the step
  int stages = 1;                // evaluations per step of the method
  std::int64_t slot_count = -1;  // steps × stages on a fixed grid; −1 where the step count is adaptive
  EvalPhase phase = EvalPhase::forward;
  std::int64_t slot() const { return step * stages + stage; }
};

template <class F, class S>
concept VelocityField = HasStateAlgebra<S> && requires(F& f, const S& h, RowTimes t, const EvalContext& ctx, S& v) {
  f(h, t, ctx, v);
};

namespace detail {
template <class P>
struct ParameterProbe {
  void operator()(std::string_view, P&, P&) const {}
};
}  // namespace detail

template <class F, class S>
concept DifferentiableField =
    VelocityField<F, S> && requires { typename F::parameter_type; } && HasStateAlgebra<typename F::parameter_type> &&
    requires(F& f, const S& h, RowTimes t, const EvalContext& ctx, const S& cot_v, S& cot_h, std::span<double> cot_t) {
      f.vjp(h, t, ctx, cot_v, cot_h, cot_t);
      f.for_each_parameter(detail::ParameterProbe<typename F::parameter_type>{});
    };

template <class F>
constexpr bool needs_fixed_slots() {
  if constexpr (requires { F::needs_fixed_slots; })
    return bool(F::needs_fixed_slots);
  else
    return false;
}

template <class F>
constexpr bool provides_time_vjp() {
  if constexpr (requires { F::provides_time_vjp; })
    return bool(F::provides_time_vjp);
  else
    return true;
}

// Sets every parameter gradient of a differentiable field to zero.
template <class F>
void zero_gradients(F& field) {
  field.for_each_parameter([](std::string_view, auto&, auto& grad) { ops::set_zero(grad); });
}

}  // namespace flas::ode
