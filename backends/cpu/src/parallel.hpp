#pragma once
// When an element-wise loop is worth an OpenMP team: waking threads costs a few microseconds, which
// tiny tensors (a decode step's [1, H] vectors) never earn back.
#include <cstdint>

namespace flas::cpu_detail {

inline constexpr std::int64_t kParallelMinElements = 1 << 15;

inline bool worth_parallel(std::int64_t elements) { return elements >= kParallelMinElements; }

// f(i) for i in [0, n): vectorised, and over the thread team when n is worth it. Two loops on purpose:
// GCC's outlined `parallel for simd ... if (false)` body ran its scalar remainder path for every
// element (perf on the decode step: softcap and GELU all in vmulss/vcomiss), a plain `omp simd` loop
// does not.
template <class F>
inline void for_each_element(std::int64_t n, F&& f) {
  if (worth_parallel(n)) {
#pragma omp parallel for simd
    for (std::int64_t i = 0; i < n; ++i) f(i);
  } else {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) f(i);
  }
}

}  // namespace flas::cpu_detail
