#pragma once
// The host backends every model test runs on: the scalar reference and, where built, the CPU backend.
// A test executable compiled with FLAS_TEST_KOKKOS (tests/kokkos) runs the same suites on the Kokkos
// backend instead: the suites are instantiated for it, not copied.
#include "flas/backends/scalar.hpp"
#include "flas/backends/scalar_backward.hpp"
#if defined(FLAS_TEST_KOKKOS)
#include "flas/backends/kokkos.hpp"
#if __has_include("flas/backends/kokkos_backward.hpp")
#include "flas/backends/kokkos_backward.hpp"
#endif
#define FLAS_HOST_BACKENDS flas::KokkosBackend<>
#elif __has_include("flas/backends/cpu.hpp")
#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#define FLAS_HOST_BACKENDS flas::ScalarBackend<float>, flas::CpuBackend
#else
#define FLAS_HOST_BACKENDS flas::ScalarBackend<float>
#endif
