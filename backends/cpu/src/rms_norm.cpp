// RMSNorm with Gemma's (1 + w): y = x · rsqrt(mean(x²) + eps) · (1 + w), one row per task.
// The sum of squares uses 16 f32 partial sums (vectorisable, and more accurate than one running sum);
// y may be x.
#include <cmath>
#include <vector>

#include "flas/backends/cpu.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"

namespace flas {

using namespace cpu_detail;

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
  expect_f32(x, "rms_norm", "x");
  expect_f32(y, "rms_norm", "y");
  expect_same_numel(x, y, "rms_norm");
  const std::int64_t D = x.dim(-1), M = rows_of(x);
  FLAS_CHECK(w.numel() == D, "rms_norm: weight has ", w.numel(), " elements, expected ", D);
  std::vector<float> one_plus_w = widen_to_f32(w, "rms_norm", "weight");
  for (float& v : one_plus_w) v = 1.0f + v;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* g = one_plus_w.data();
#pragma omp parallel for if (worth_parallel(M * D))
  for (std::int64_t m = 0; m < M; ++m) {
    const float* xr = xp + m * D;
    float* yr = yp + m * D;
    constexpr int kLanes = 16;
    float part[kLanes] = {};
    std::int64_t d = 0;
    for (; d + kLanes <= D; d += kLanes)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) part[l] += xr[d + l] * xr[d + l];
    for (; d < D; ++d) part[d % kLanes] += xr[d] * xr[d];
    double ss = 0;
    for (float p : part) ss += p;
    const float inv = float(1.0 / std::sqrt(ss / double(D) + double(eps)));
#pragma omp simd
    for (std::int64_t i = 0; i < D; ++i) yr[i] = xr[i] * inv * g[i];
  }
}

}  // namespace flas
