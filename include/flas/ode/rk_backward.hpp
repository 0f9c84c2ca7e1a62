#pragma once
// The VJP of one explicit RK step, written against the algebra like the step itself. With
//   Y_i = y0 + dt·Σ_{j<i} a_ij k_j,  k_i = f(Y_i, t_i),  y1 = y0 + dt·Σ_i b_i k_i,
// and outputs inside the step o = y0 + dt·Σ_i β_i(x_o) k_i (dense_output.hpp), going backwards over i:
//   ∂k_i = dt·(b_i ∂y1 + Σ_{j>i} a_ji ∂Y_j + Σ_o β_i(x_o) g_o)   [+ ∂k_{S−1} carried from the next step: FSAL]
//   ∂Y_i = vjp_i(∂k_i)                                              (parameter gradients accumulate)
//   ∂y0  = ∂y1 + Σ_i ∂Y_i + Σ_o g_o.
// An FSAL step does not evaluate k_0 (the step before did, as its last stage): ∂k_0 is handed back.
// Stages whose cotangent is zero (a zero tableau column, e.g. Euler's nothing, dopri5's b_1 = 0 paths) are
// skipped without a VJP.
//
// Optionally it also accumulates ∂L/∂δ for dopri5's first step δ (torchdiffeq lets the gradient flow
// through Hairer's first step): in the first step dt = δ and t_i = t0 + c_i·δ; in every later step all
// times are shifted by δ (t0 = t_start + δ + constants), which moves the stage times and the fraction x of
// an output inside the step.
#include <array>
#include <span>
#include <vector>

#include "flas/ode/algebra_ops.hpp"
#include "flas/ode/dense_output.hpp"
#include "flas/ode/explicit_rk.hpp"

namespace flas::ode {

template <class State>
struct OutputCotangent {
  const State* g;  // ∂L/∂output
  double x;        // where the output falls in the step
};

enum class DeltaRole : std::uint8_t { none, first_step, later_step };

template <class State>
struct DeltaArgs {
  DeltaRole role = DeltaRole::none;
  std::span<const State* const> k;  // the step's stage derivatives (needed for first_step and for outputs)
  double* cot = nullptr;            // accumulates ∂L/∂δ
};

template <class Method, class State>
class RkStepBackward {
 public:
  static constexpr auto& tab = Method::tableau;
  static constexpr int S = tab.stages;
  static constexpr bool fsal = tab.fsal;

  explicit RkStepBackward(const State& like) : cot_k_(ops::empty_like(like)), tmp_(ops::empty_like(like)) {
    for (auto& c : cot_Y_) c = ops::empty_like(like);
    cot_t_.resize(ops::rows(like));
  }

  // Y[i]: stage inputs, Y[0] = y0 (and Y[S−1] = y1 for FSAL). cot_y: in ∂L/∂y1, out ∂L/∂y0.
  // cot_klast (FSAL only): in ∂L/∂k_{S−1} from later use (nullptr: zero), out ∂L/∂k_0 (must then be non-null).
  // Returns the number of VJPs evaluated.
  template <class Field, class Clock>
  int run(Field& f, std::span<const State* const> Y, const StepTimes& st, Clock& clock, EvalContext ctx,
          State& cot_y, State* cot_klast, bool cot_klast_zero, std::span<const OutputCotangent<State>> outs,
          const DeltaArgs<State>& delta) {
    const double one = 1.0;
    const RowValues unit(one);
    constexpr std::size_t max_terms = std::size_t(S) + 8;
    std::array<bool, std::size_t(S)> live{};
    std::vector<std::array<double, std::size_t(S)>> w(outs.size()), dw(outs.size());
    for (std::size_t o = 0; o < outs.size(); ++o) {
      const auto d = dense_weights(tab, outs[o].x);
      w[o] = d.w, dw[o] = d.dw;
    }
    const bool want_t = delta.role != DeltaRole::none;
    int vjps = 0;

    // The δ terms that need the stage derivatives are taken before cot_y is overwritten.
    if (delta.role == DeltaRole::first_step) {
      combine(tmp_, unit, tab.b, delta.k);
      *delta.cot += ops::dot(cot_y, tmp_);
    }
    for (std::size_t o = 0; o < outs.size() && delta.role != DeltaRole::none; ++o) {
      // ∂o/∂x = dt·Σ β'_j k_j; x = (t − t0)/(t1 − t0) moves by −x/δ (first step) or −1/(t1 − t0) (later).
      combine(tmp_, st.dt, dw[o], delta.k);
      const double cot_x = ops::dot(*outs[o].g, tmp_);
      const double span = st.s1 - st.s0;
      *delta.cot += cot_x * (delta.role == DeltaRole::first_step ? -outs[o].x / span : -1.0 / span);
      if (delta.role == DeltaRole::first_step) {  // ∂o/∂dt at fixed x = Σ β_j k_j
        combine(tmp_, unit, w[o], delta.k);
        *delta.cot += ops::dot(*outs[o].g, tmp_);
      }
    }

    for (int i = S - 1; i >= (fsal ? 1 : 0); --i) {
      std::array<double, max_terms> a{};
      std::array<const State*, max_terms> terms{};
      std::size_t m = 0;
      auto push = [&](double c, const State* s) {
        if (c != 0.0) a[m] = c, terms[m] = s, ++m;
      };
      push(tab.b[std::size_t(i)], &cot_y);
      for (int j = i + 1; j < S; ++j)
        if (live[std::size_t(j)]) push(tab.a[std::size_t(j)][std::size_t(i)], &cot_Y_[std::size_t(j)]);
      for (std::size_t o = 0; o < outs.size(); ++o) push(w[o][std::size_t(i)], outs[o].g);
      const State* base = (fsal && i == S - 1 && !cot_klast_zero) ? cot_klast : nullptr;
      if (m == 0 && !base) continue;
      ops::scale_sum(cot_k_, base, st.dt, std::span<const double>(a.data(), m),
                     std::span<const State* const>(terms.data(), m));
      ctx.stage = i;
      const RowTimes ti = clock.stage(st, tab.c[std::size_t(i)]);
      f.vjp(*Y[std::size_t(i)], ti, ctx, cot_k_, cot_Y_[std::size_t(i)],
            want_t ? std::span<double>(cot_t_) : std::span<double>());
      ++vjps;
      live[std::size_t(i)] = true;
      if (want_t) {
        double sum = 0;
        for (double v : cot_t_) sum += v;
        // first step: t_i = t0 + c_i·δ (t1 itself for c = 1); later steps: every time shifted by δ.
        *delta.cot += (delta.role == DeltaRole::first_step ? tab.c[std::size_t(i)] : 1.0) * sum;
      }
      if (delta.role == DeltaRole::first_step && i > 0) {  // Y_i = y0 + δ·Σ_j a_ij k_j
        combine(tmp_, unit, tab.a[std::size_t(i)], delta.k, std::size_t(i));
        *delta.cot += ops::dot(cot_Y_[std::size_t(i)], tmp_);
      }
    }

    if constexpr (fsal) {  // ∂k_0, handed to the step before (or to the initial evaluation)
      std::array<double, max_terms> a{};
      std::array<const State*, max_terms> terms{};
      std::size_t m = 0;
      auto push = [&](double c, const State* s) {
        if (c != 0.0) a[m] = c, terms[m] = s, ++m;
      };
      push(tab.b[0], &cot_y);
      for (int j = 1; j < S; ++j)
        if (live[std::size_t(j)]) push(tab.a[std::size_t(j)][0], &cot_Y_[std::size_t(j)]);
      for (std::size_t o = 0; o < outs.size(); ++o) push(w[o][0], outs[o].g);
      ops::scale_sum(*cot_klast, static_cast<const State*>(nullptr), st.dt, std::span<const double>(a.data(), m),
                     std::span<const State* const>(terms.data(), m));
    }

    // ∂y0 = ∂y1 + Σ ∂Y_i + Σ g_o
    std::array<double, max_terms> a{};
    std::array<const State*, max_terms> terms{};
    std::size_t m = 0;
    for (int i = 0; i < S; ++i)
      if (live[std::size_t(i)]) a[m] = 1.0, terms[m] = &cot_Y_[std::size_t(i)], ++m;
    for (std::size_t o = 0; o < outs.size(); ++o) a[m] = 1.0, terms[m] = outs[o].g, ++m;
    if (m) ops::scale_sum(cot_y, &cot_y, unit, std::span<const double>(a.data(), m),
                          std::span<const State* const>(terms.data(), m));
    return vjps;
  }

 private:
  // out = Σ_j (c_j·dt)·k_j over the first n stages.
  static void combine(State& out, RowValues dt, const std::array<double, std::size_t(S)>& c,
                      std::span<const State* const> k, std::size_t n = std::size_t(S)) {
    ops::scale_sum(out, static_cast<const State*>(nullptr), dt, std::span<const double>(c.data(), n), k.first(n));
  }

  std::array<State, std::size_t(S)> cot_Y_;
  State cot_k_, tmp_;
  std::vector<double> cot_t_;
};

}  // namespace flas::ode
