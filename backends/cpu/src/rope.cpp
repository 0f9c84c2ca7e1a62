// Rotary position embedding, rotate_half pairing (i, i + hd/2), in place on x [B, S, nh, hd].
// Angles are pos · inv_freq in f32 (as HF computes them) and cos/sin come from libm in f32, once per
// (position, frequency) and shared by all heads of that position — the rotation itself vectorises.
#include <cmath>
#include <vector>

#include "flas/backends/cpu.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"

namespace flas {

using namespace cpu_detail;

void CpuBackend::rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  expect_f32(x, "rope", "x");
  FLAS_CHECK(x.rank() == 4, "rope: x has shape ", x.shape(), ", expected [B, S, heads, head_dim]");
  const std::int64_t B = x.dim(0), S = x.dim(1), nh = x.dim(2), hd = x.dim(3), half = hd / 2;
  FLAS_CHECK(positions.numel() == B * S, "rope: positions ", positions.shape(), " do not match x ", x.shape());
  FLAS_CHECK(inv_freq.numel() == half, "rope: inv_freq has ", inv_freq.numel(), " entries, expected ", half);
  const auto* pos = positions.data<std::int64_t>();
  const float* f = inv_freq.data<float>();
  float* xp = x.data<float>();
#pragma omp parallel if (worth_parallel(x.numel()))
  {
    std::vector<float> cs(std::size_t(2 * half));
    float* c = cs.data();
    float* s = c + half;
#pragma omp for
    for (std::int64_t bs = 0; bs < B * S; ++bs) {
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = float(pos[bs]) * f[i];
        c[i] = std::cos(angle);
        s[i] = std::sin(angle);
      }
      for (std::int64_t h = 0; h < nh; ++h) {
        float* lo = xp + (bs * nh + h) * hd;
        float* hi = lo + half;
#pragma omp simd
        for (std::int64_t i = 0; i < half; ++i) {
          const float a = lo[i], b = hi[i];
          lo[i] = a * c[i] - b * s[i];
          hi[i] = b * c[i] + a * s[i];
        }
      }
    }
  }
}

}  // namespace flas
