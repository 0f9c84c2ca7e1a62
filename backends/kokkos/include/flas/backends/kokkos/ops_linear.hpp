#pragma once
// KokkosBackend::linear: y = x·wᵀ (+ b) as KokkosBlas::gemm("N", "T") on row-major Views, which Kokkos
// Kernels hands to the vendor BLAS where it has one (the system libblas on Debian: reference BLAS or
// OpenBLAS, whichever update-alternatives selects; cuBLAS/rocBLAS on GPUs). BF16 weights are widened
// to f32 per call into a scratch View (exact: bf16 is a truncated f32), then the same gemm runs.
#include <KokkosBlas3_gemm.hpp>

#include "flas/backends/kokkos.hpp"
#include "flas/backends/kokkos/views.hpp"

namespace flas {

template <class E>
void KokkosBackend<E>::linear(const tensor& x, const tensor& w, const tensor* bias, tensor& y) {
  using namespace kokkos_detail;
  using Mem = kokkos_memory_space;
  using matrix = Kokkos::View<float**, Kokkos::LayoutRight, Mem>;
  using cmatrix = Kokkos::View<const float**, Kokkos::LayoutRight, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  using umatrix = Kokkos::View<float**, Kokkos::LayoutRight, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  kokkos_ensure_initialized();
  expect_f32(x, "linear", "x");
  expect_f32(y, "linear", "y");
  FLAS_CHECK(w.rank() == 2, "linear: weight must be [N, K], got ", w.shape());
  const std::int64_t N = w.dim(0), K = w.dim(1), M = rows(x);
  FLAS_CHECK(x.rank() >= 1 && x.dim(-1) == K, "linear: x ", x.shape(), " has inner size ", x.rank() ? x.dim(-1) : 0,
             ", weight ", w.shape(), " expects ", K);
  FLAS_CHECK(y.numel() == M * N, "linear: y has ", y.numel(), " elements, expected ", M * N);
  const Weight ww = weight(w, "linear", "weight");
  Weight bw;
  if (bias) {
    FLAS_CHECK(bias->numel() == N, "linear: bias has ", bias->numel(), " elements, expected ", N);
    bw = weight(*bias, "linear", "bias");
  }
  if (M == 0 || N == 0) return;

  // gemm may not write over its inputs: y aliasing x goes through a scratch result.
  const auto* x0 = static_cast<const std::byte*>(x.raw());
  const auto* y0 = static_cast<const std::byte*>(y.raw());
  const bool overlap = x0 < y0 + y.bytes() && y0 < x0 + x.bytes();
  matrix scratch;
  umatrix Y(y.template data<float>(), std::size_t(M), std::size_t(N));
  if (overlap) scratch = matrix(Kokkos::ViewAllocateWithoutInitializing("flas::linear_out"), M, N);
  umatrix out = overlap ? umatrix(scratch.data(), std::size_t(M), std::size_t(N)) : Y;

  if (K == 0) {
    Kokkos::deep_copy(out, 0.0f);
  } else {
    matrix wide;  // bf16 weights widened to f32
    const float* wp = ww.f;
    if (!wp) {
      wide = matrix(Kokkos::ViewAllocateWithoutInitializing("flas::linear_w32"), N, K);
      float* dst = wide.data();
      Kokkos::parallel_for("flas::linear_widen", Kokkos::RangePolicy<E>(0, N * K),
                           KOKKOS_LAMBDA(std::int64_t i) { dst[i] = ww(i); });
      wp = wide.data();
    }
    const cmatrix X(x.template data<float>(), std::size_t(M), std::size_t(K));
    const cmatrix W(wp, std::size_t(N), std::size_t(K));
    KokkosBlas::gemm("N", "T", 1.0f, X, W, 0.0f, out);
  }
  if (bias) {
    Kokkos::parallel_for(
        "flas::linear_bias", Kokkos::MDRangePolicy<E, Kokkos::Rank<2>>({0, 0}, {M, N}),
        KOKKOS_LAMBDA(std::int64_t m, std::int64_t n) { out(m, n) += bw(n); });
  }
  if (overlap) Kokkos::deep_copy(Y, out);
}

}  // namespace flas
