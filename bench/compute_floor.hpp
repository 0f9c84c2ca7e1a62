#pragma once
// The machine's arithmetic peaks, measured in the same run as the benchmarks they bound: f32 FMA
// (vfmadd231ps) and bf16 dot products (vdpbf16ps, avx512_bf16) on registers only, every thread of
// the benchmark at once. Benchmarks print their time against FLOPs / peak (a floor no kernel beats)
// instead of peaks remembered from another machine (the anchors of bench/anchors/ came from a
// Sapphire Rapids with AMX; today's machines are Zen 5 without it).
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace flas::bench {

namespace detail {

// Runs `kernel(iterations)` on `threads` threads at once for about `seconds`; returns FLOP/s given
// `flops_per_iteration` per thread and iteration.
template <class Kernel>
double threaded_rate(int threads, double flops_per_iteration, Kernel kernel, double seconds = 0.25) {
  std::uint64_t iterations = 1 << 16;
  for (;;) {  // grow until one run takes long enough to time
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> team;
    std::vector<float> sinks(std::size_t(threads), 0.0f);
    for (int t = 0; t < threads; ++t) team.emplace_back([&, t] { sinks[std::size_t(t)] = kernel(iterations); });
    for (auto& th : team) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile float sink = sinks[0];
    (void)sink;
    if (s >= seconds) return flops_per_iteration * double(iterations) * double(threads) / s;
    iterations *= 2;
  }
}

}  // namespace detail

// f32 FMA peak in GFLOP/s: 12 independent accumulators (enough to cover the FMA latency on two
// pipes), 16 lanes x 2 FLOPs per FMA with AVX-512 (8 lanes with AVX2).
inline double f32_fma_peak_gflops(int threads) {
#if defined(__AVX512F__)
  auto kernel = [](std::uint64_t n) {
    __m512 a[12];
    for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + float(i) * 1e-3f);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (std::uint64_t k = 0; k < n; ++k)
#pragma GCC unroll 12  // unrolled, the accumulators live in registers (a loop keeps them on the stack)
      for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
  };
  return detail::threaded_rate(threads, 12.0 * 16 * 2, kernel) * 1e-9;
#elif defined(__AVX2__)
  auto kernel = [](std::uint64_t n) {
    __m256 a[12];
    for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + float(i) * 1e-3f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (std::uint64_t k = 0; k < n; ++k)
#pragma GCC unroll 12  // unrolled, the accumulators live in registers (a loop keeps them on the stack)
      for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
    float out[8];
    _mm256_storeu_ps(out, a[0]);
    return out[0];
  };
  return detail::threaded_rate(threads, 12.0 * 8 * 2, kernel) * 1e-9;
#else
  (void)threads;
  return 0;  // no vector FMA compiled in: printed as 0 (unknown)
#endif
}

// bf16 dot-product peak in GFLOP/s (vdpbf16ps: 32 bf16 pairs, 2 FLOPs each, into 16 f32 lanes);
// 0 where the build has no avx512_bf16.
inline double bf16_dot_peak_gflops(int threads) {
#if defined(__AVX512BF16__)
  auto kernel = [](std::uint64_t n) {
    __m512 a[12];
    for (int i = 0; i < 12; ++i) a[i] = _mm512_setzero_ps();
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);  // 1.0, ~6e-8
    for (std::uint64_t k = 0; k < n; ++k)
#pragma GCC unroll 12  // unrolled, the accumulators live in registers (a loop keeps them on the stack)
      for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbf16_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
  };
  return detail::threaded_rate(threads, 12.0 * 32 * 2, kernel) * 1e-9;
#else
  (void)threads;
  return 0;
#endif
}

}  // namespace flas::bench
