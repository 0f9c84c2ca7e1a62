#pragma once
// The backend conformance suite's toolkit: seeded random tensors, NaN-poisoned outputs (an element an
// op forgets to write stays NaN and fails the comparison), and the oracle — ScalarBackend<double> run on
// the same f32 inputs widened to f64. Checks are written once as templates over the backend under test
// and instantiated for CpuBackend and, as a check of the suite itself, ScalarBackend<float>.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "flas/backends/cpu.hpp"
#include "flas/backends/scalar.hpp"
#if defined(FLAS_TEST_KOKKOS)
#include "flas/backends/kokkos.hpp"
#endif
#include "flas/core/tensor.hpp"
#include "support/compare.hpp"

namespace flas::conformance {

using Ref = ScalarBackend<double>;

// Tolerances in max|Δ| / max|ref|, all against the f64 oracle:
//  - kElementwise: one or two f32 roundings per element (fast tanh/exp stay within ~3e-7).
//  - kReduction: f32 sums over up to ~1000 terms in another order than the oracle (linear, rms_norm,
//    attention); an f32 implementation lands near 1e-6, the project's f32 tolerance is 1e-5.
//  - kBf16Activations: linear's opt-in fast mode rounds activations to bf16 (2^-9 relative each).
//  - kMaskedRowNeg1e4: attention rows with no visible key under the −1e4 additive rule: every score is
//    s − 1e4 rounded to f32 (ulp 1e-3), as in torch and ScalarBackend<float>, so f32 and f64 differ there.
// The backends each conformance case is instantiated for (tests/kokkos builds the same sources with
// FLAS_TEST_KOKKOS, for the Kokkos backend).
#if defined(FLAS_TEST_KOKKOS)
#define FLAS_CONFORMANCE_BACKENDS KokkosBackend<>
#else
#define FLAS_CONFORMANCE_BACKENDS CpuBackend, ScalarBackend<float>
#endif

inline constexpr double kElementwise = 2e-6;
inline constexpr double kReduction = 1e-5;
inline constexpr double kBf16Activations = 1e-2;
inline constexpr double kMaskedRowNeg1e4 = 5e-3;

inline std::mt19937_64& rng() {
  static std::mt19937_64 gen(20240611);
  return gen;
}

// Uniform in [lo, hi), f32 (or bf16: the f32 value rounded to bf16).
inline Tensor random_tensor(const Shape& s, DType dt = DType::F32, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t = Tensor::empty(s, dt);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const float v = dist(rng());
    if (dt == DType::F32) t.data<float>()[i] = v;
    else t.data<bf16>()[i] = f32_to_bf16(v);
  }
  return t;
}

inline Tensor poisoned(const Shape& s) {
  Tensor t = Tensor::empty(s, DType::F32);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  return t;
}

inline Tensor to_f64(const Tensor& t) { return convert(t, DType::F64); }

inline bool all_finite(const Tensor& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(element_as_double(t, i))) return false;
  return true;
}

// Runs `check` once per variant of the backend that must agree with the oracle: every kernel ISA this
// CPU supports for CpuBackend (restoring the previous setting), once for any other backend.
template <class B>
void for_each_variant(const std::function<void(const std::string&)>& check) {
  if constexpr (std::is_same_v<B, CpuBackend>) {
    const auto before = CpuBackend::kernel_isa();
    for (auto isa : {CpuBackend::KernelIsa::generic, CpuBackend::KernelIsa::avx2, CpuBackend::KernelIsa::avx512}) {
      if (isa > CpuBackend::best_supported_isa()) continue;
      CpuBackend::set_kernel_isa(isa);
      check(CpuBackend::isa_name(isa));
    }
    CpuBackend::set_kernel_isa(before);
  } else {
    check(B::name);
  }
}

#define FLAS_CHECK_CLOSE(got, ref, tol)                                              \
  do {                                                                               \
    const double flas_err_ = ::flas::testing::max_rel_diff((got), (ref));            \
    CHECK_MESSAGE(flas_err_ <= (tol), "max|Δ|/max|ref| = ", flas_err_, " > ", (tol)); \
  } while (0)

}  // namespace flas::conformance
