#pragma once
// Output between the ends of a step as a combination of the step's stage derivatives:
//   y(t0 + x·dt) = y0 + dt·Σ_j β_j(x)·k_j.
// For linear interpolation β_j = x·b_j (y1 − y0 = dt·Σ b_j k_j); for dopri5, substituting y1 and y_mid
// into torchdiffeq's quartic fit gives β_j = B1(x)·b_j + BM(x)·mid_j + [j = 0]·F0(x) + [j = S−1]·F1(x).
// One form serves the forward output and its exact VJP (cot_y0 += g, cot_k_j += dt·β_j·g).
#include <array>

#include "flas/ode/butcher_tableau.hpp"
#include "flas/ode/row_values.hpp"

namespace flas::ode {

template <int S>
struct DenseWeights {
  std::array<double, S> w{};   // β_j(x)
  std::array<double, S> dw{};  // dβ_j/dx
};

template <int S>
FLAS_ODE_STRICT_FP inline DenseWeights<S> dense_weights(const ButcherTableau<S>& tab, double x) {
  DenseWeights<S> d;
  if (tab.dense == DenseOutput::linear) {
    for (int j = 0; j < S; ++j) d.w[j] = x * tab.b[j], d.dw[j] = tab.b[j];
    return d;
  }
  const double x2 = x * x, x3 = x2 * x, x4 = x3 * x;
  // Coefficients of y1, y_mid, dt·f0, dt·f1 in torchdiffeq's fit (the y0 terms sum to 1).
  const double B1 = -5 * x2 + 14 * x3 - 8 * x4, dB1 = -10 * x + 42 * x2 - 32 * x3;
  const double BM = 16 * x2 - 32 * x3 + 16 * x4, dBM = 32 * x - 96 * x2 + 64 * x3;
  const double F0 = x - 4 * x2 + 5 * x3 - 2 * x4, dF0 = 1 - 8 * x + 15 * x2 - 8 * x3;
  const double F1 = x2 - 3 * x3 + 2 * x4, dF1 = 2 * x - 9 * x2 + 8 * x3;
  for (int j = 0; j < S; ++j) {
    d.w[j] = B1 * tab.b[j] + BM * tab.mid[j];
    d.dw[j] = dB1 * tab.b[j] + dBM * tab.mid[j];
  }
  d.w[0] += F0, d.dw[0] += dF0;
  d.w[S - 1] += F1, d.dw[S - 1] += dF1;
  return d;
}

}  // namespace flas::ode
