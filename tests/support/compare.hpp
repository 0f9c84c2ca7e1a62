#pragma once
// The one comparison metric the project uses against references: max|a − b| / max|b|.
#include <algorithm>
#include <cmath>

#include "flas/core/tensor.hpp"

namespace flas::testing {

inline double max_rel_diff(const Tensor& got, const Tensor& ref) {
  FLAS_CHECK(got.numel() == ref.numel(), "compare: got ", got.shape(), " but the reference is ", ref.shape());
  double diff = 0, scale = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) {
    const double a = element_as_double(got, i), b = element_as_double(ref, i);
    if (std::isnan(a) != std::isnan(b)) return INFINITY;
    diff = std::max(diff, std::abs(a - b));
    scale = std::max(scale, std::abs(b));
  }
  return scale == 0 ? diff : diff / scale;
}

}  // namespace flas::testing
