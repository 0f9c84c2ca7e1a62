#pragma once
// What every benchmark program's main() does: measure the compute peaks once, with the thread count
// the kernels use, record them in the output's context, then run the selected benchmarks.
//   int main(int argc, char** argv) { flas::bench::measure_compute_peaks(); return flas::bench::run_benchmarks(argc, argv); }
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>

#include "compute_floor.hpp"
#include "flas/backends/cpu.hpp"

namespace flas::bench {

struct ComputePeaks {
  double f32 = 0, bf16 = 0;  // GFLOP/s: f32 FMA and bf16 dot products, all threads at once
};
inline ComputePeaks& compute_peaks() {
  static ComputePeaks p;
  return p;
}

inline void measure_compute_peaks() {
  const int threads = std::max(1, CpuBackend::num_threads());
  compute_peaks() = {f32_fma_peak_gflops(threads), bf16_dot_peak_gflops(threads)};
  benchmark::AddCustomContext("flas_threads", std::to_string(threads));
  benchmark::AddCustomContext("measured_f32_fma_peak_GFLOPs", std::to_string(compute_peaks().f32));
  benchmark::AddCustomContext("measured_bf16_dot_peak_GFLOPs", std::to_string(compute_peaks().bf16));
}

inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace flas::bench
