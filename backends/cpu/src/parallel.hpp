#pragma once
// When an element-wise loop is worth an OpenMP team: waking threads costs a few microseconds, which
// tiny tensors (a decode step's [1, H] vectors) never earn back.
#include <cstdint>

namespace flas::cpu_detail {

inline constexpr std::int64_t kParallelMinElements = 1 << 15;

inline bool worth_parallel(std::int64_t elements) { return elements >= kParallelMinElements; }

}  // namespace flas::cpu_detail
