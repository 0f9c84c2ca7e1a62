#pragma once
// The host backends every model test runs on: the scalar reference and, where built, the CPU backend.
#include "flas/backends/scalar.hpp"
#include "flas/backends/scalar_backward.hpp"
#if __has_include("flas/backends/cpu.hpp")
#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#define FLAS_HOST_BACKENDS flas::ScalarBackend<float>, flas::CpuBackend
#else
#define FLAS_HOST_BACKENDS flas::ScalarBackend<float>
#endif
