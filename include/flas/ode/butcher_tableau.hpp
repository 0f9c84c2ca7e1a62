#pragma once
// Explicit Runge-Kutta methods as constexpr Butcher tableaus. A method is a type with a `tableau` and a
// `name`; the generic stepper (explicit_rk.hpp) runs any of them, and a new method is a new tableau.
// Coefficients are written as the same double expressions torchdiffeq uses, so they round identically.
#include <array>
#include <cstdint>

namespace flas::ode {

enum class DenseOutput : std::uint8_t {
  linear,          // y0 + x·(y1 − y0) between grid points (torchdiffeq's fixed-grid "linear")
  dopri5_quartic,  // torchdiffeq's 4th-order fit through y0, y1, y_mid, f0, f1
};

template <int S>
struct ButcherTableau {
  static constexpr int stages = S;
  std::array<double, S> c{};                // stage times as fractions of the step; c == 1 means t1 itself
  std::array<std::array<double, S>, S> a{};  // strictly lower triangular
  std::array<double, S> b{};                // solution weights
  std::array<double, S> e{};                // error weights b − b̂ (embedded pairs only)
  std::array<double, S> mid{};              // weights of the step's midpoint (dopri5 dense output)
  int order = 1;                            // order of the propagated solution
  bool embedded = false;                    // has an error estimate: adaptive step size
  bool fsal = false;                        // last stage is evaluated at y1 and reused as the next first stage
  DenseOutput dense = DenseOutput::linear;
};

// Explicit Euler.
struct Euler {
  static constexpr const char* name = "euler";
  static constexpr ButcherTableau<1> tableau{.c = {0.0}, .a = {{{0.0}}}, .b = {1.0}, .order = 1};
};

// Explicit midpoint: f at t0 + dt/2 on y0 + dt/2·k1.
struct Midpoint {
  static constexpr const char* name = "midpoint";
  static constexpr ButcherTableau<2> tableau{
      .c = {0.0, 0.5}, .a = {{{0.0, 0.0}, {0.5, 0.0}}}, .b = {0.0, 1.0}, .order = 2};
};

// Classic RK4 (1/6, 1/3, 1/3, 1/6).
struct Rk4Classic {
  static constexpr const char* name = "rk4";
  static constexpr ButcherTableau<4> tableau{
      .c = {0.0, 0.5, 0.5, 1.0},
      .a = {{{0, 0, 0, 0}, {0.5, 0, 0, 0}, {0, 0.5, 0, 0}, {0, 0, 1.0, 0}}},
      .b = {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6},
      .order = 4};
};

// Kutta's 3/8 rule: torchdiffeq's "rk4".
struct Rk4ThreeEighths {
  static constexpr const char* name = "rk4_38";
  static constexpr ButcherTableau<4> tableau{
      .c = {0.0, 1.0 / 3, 2.0 / 3, 1.0},
      .a = {{{0, 0, 0, 0}, {1.0 / 3, 0, 0, 0}, {-1.0 / 3, 1.0, 0, 0}, {1.0, -1.0, 1.0, 0}}},
      .b = {0.125, 0.375, 0.375, 0.125},
      .order = 4};
};

// Dormand–Prince 5(4) with FSAL and Shampine's midpoint for dense output (torchdiffeq's dopri5).
struct Dopri5 {
  static constexpr const char* name = "dopri5";
  static constexpr ButcherTableau<7> tableau{
      .c = {0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0},
      .a = {{{0, 0, 0, 0, 0, 0, 0},
             {1.0 / 5, 0, 0, 0, 0, 0, 0},
             {3.0 / 40, 9.0 / 40, 0, 0, 0, 0, 0},
             {44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0, 0},
             {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0, 0},
             {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0, 0},
             {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0}}},
      .b = {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0},
      .e = {35.0 / 384 - 1951.0 / 21600, 0, 500.0 / 1113 - 22642.0 / 50085, 125.0 / 192 - 451.0 / 720,
            -2187.0 / 6784 - -12231.0 / 42400, 11.0 / 84 - 649.0 / 6300, -1.0 / 60.0},
      .mid = {6025192743.0 / 30085553152.0 / 2, 0, 51252292925.0 / 65400821598.0 / 2,
              -2691868925.0 / 45128329728.0 / 2, 187940372067.0 / 1594534317056.0 / 2,
              -1776094331.0 / 19743644256.0 / 2, 11237099.0 / 235043384.0 / 2},
      .order = 5,
      .embedded = true,
      .fsal = true,
      .dense = DenseOutput::dopri5_quartic};
};

template <class M>
concept RungeKuttaMethod = requires {
  M::tableau.stages;
  { M::name } -> std::convertible_to<const char*>;
};

template <class M>
inline constexpr bool is_adaptive = M::tableau.embedded;

}  // namespace flas::ode
