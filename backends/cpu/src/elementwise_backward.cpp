// BackwardOps<CpuBackend>: the element-wise and row-wise VJPs, each the scalar backend's formula
// (scalar_backward.hpp) in f32, vectorised (`omp simd`, vec_math.hpp's exp) and split over rows when
// the tensor is large enough. Every element's inputs are read before its output is written, so the
// outputs the op set lets alias an input (rms_norm's dx = dy, softcap's dx = dy) may.
#include <omp.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "flas/backends/cpu_backward.hpp"
#include "op_checks.hpp"
#include "parallel.hpp"
#include "vec_math.hpp"

namespace flas {

using namespace cpu_detail;

namespace {

// row(m, partial) for rows [0, M), split over threads when worth it; partial is the thread's own [D]
// f32 sum for the parameter gradient (nullptr when none is asked). The partials are then added into
// grad in thread order, so the result is deterministic for a given thread count.
template <class RowFn>
void rows_with_param_grad(std::int64_t M, std::int64_t D, Tensor* grad, RowFn&& row) {
  const bool parallel = worth_parallel(M * D);
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<float> partial(grad ? std::size_t(threads * D) : 0, 0.0f);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    float* mine = grad ? partial.data() + omp_get_thread_num() * D : nullptr;
#pragma omp for schedule(static)
    for (std::int64_t m = 0; m < M; ++m) row(m, mine);
  }
  if (!grad) return;
  float* gp = grad->data<float>();
  for (int t = 0; t < threads; ++t)
#pragma omp simd
    for (std::int64_t d = 0; d < D; ++d) gp[d] += partial[std::size_t(t * D + d)];
}

// The activations of an op are F32 and `fits` (their sizes agree); the error names the op and their shapes.
void expect_acts(const char* op, std::initializer_list<const Tensor*> acts, bool fits) {
  for (const Tensor* t : acts) expect_f32(*t, op, "an activation or cotangent");
  if (fits) return;
  std::string shapes;
  for (const Tensor* t : acts) shapes += (shapes.empty() ? "" : ", ") + t->shape().str();
  fail(op, ": operands ", shapes, " do not fit");
}

void expect_param_grad(const Tensor& g, std::int64_t n, const char* op, const char* what) {
  FLAS_CHECK(g.dtype() == DType::F32 && g.numel() == n, op, ": ", what, " is ", dtype_name(g.dtype()), " ",
             g.shape(), ", expected F32 with ", n, " elements");
}

}  // namespace

// y_d = x_d·r·(1 + w_d), r = (mean x² + eps)^−½; with a = Σ_e dy_e (1 + w_e) x_e:
// dx_d = r (1 + w_d) dy_d − r³ x_d a / D and dw_d += r x_d dy_d.
void BackwardOps<CpuBackend>::rms_norm_backward(const Tensor& x, const Tensor& w, float eps, const Tensor& dy,
                                                Tensor& dx, Tensor* dw) {
  const std::int64_t D = x.dim(-1), M = rows_of(x);
  expect_acts("rms_norm_backward (x, dy, dx)", {&x, &dy, &dx},
              w.numel() == D && dy.numel() == x.numel() && dx.numel() == x.numel());
  if (dw) expect_param_grad(*dw, D, "rms_norm_backward", "dw");
  std::vector<float> gain = widen_to_f32(w, "rms_norm_backward", "w");
  for (float& g : gain) g = 1.0f + g;
  const float* gn = gain.data();
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  rows_with_param_grad(M, D, dw, [&](std::int64_t m, float* dw_part) {
    const float* xr = xp + m * D;
    const float* gr = dyp + m * D;
    float* dr = dxp + m * D;
    float ss = 0, a = 0;
#pragma omp simd reduction(+ : ss, a)
    for (std::int64_t d = 0; d < D; ++d) {
      ss += xr[d] * xr[d];
      a += gr[d] * gn[d] * xr[d];
    }
    const double rd = 1.0 / std::sqrt(double(ss) / double(D) + double(eps));
    const float r = float(rd), c = float(rd * rd * rd / double(D) * double(a));
    if (dw_part) {
#pragma omp simd
      for (std::int64_t d = 0; d < D; ++d) dw_part[d] += r * xr[d] * gr[d];
    }
#pragma omp simd
    for (std::int64_t d = 0; d < D; ++d) dr[d] = r * gn[d] * gr[d] - c * xr[d];
  });
}

void BackwardOps<CpuBackend>::add_gated_backward(const Tensor& g, const Tensor& x, const Tensor& dy, Tensor& dx,
                                                 Tensor* dg) {
  const std::int64_t D = g.numel(), n = x.numel();
  expect_acts("add_gated_backward (x, dy, dx)", {&x, &dy, &dx},
              D > 0 && x.dim(-1) == D && dy.numel() == n && dx.numel() == n);
  if (dg) expect_param_grad(*dg, D, "add_gated_backward", "dg");
  const std::vector<float> gate = widen_to_f32(g, "add_gated_backward", "gate");
  const float* gt = gate.data();
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  rows_with_param_grad(n / D, D, dg, [&](std::int64_t m, float* dg_part) {
    const float* xr = xp + m * D;
    const float* gr = dyp + m * D;
    float* dr = dxp + m * D;
    if (dg_part) {
#pragma omp simd
      for (std::int64_t d = 0; d < D; ++d) dg_part[d] += gr[d] * xr[d];
    }
#pragma omp simd
    for (std::int64_t d = 0; d < D; ++d) dr[d] = gt[d] * gr[d];
  });
}

// The forward rotates each (i, i + hd/2) pair by +angle; its transpose rotates by −angle, which is the
// forward with −inv_freq: float(pos)·(−f) = −(float(pos)·f) exactly, cos is even and sin odd.
void BackwardOps<CpuBackend>::rope_backward(Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
  expect_f32(inv_freq, "rope_backward", "inv_freq");
  Tensor negated = Tensor::empty({inv_freq.numel()}, DType::F32);
  for (std::int64_t i = 0; i < inv_freq.numel(); ++i) negated.data<float>()[i] = -inv_freq.data<float>()[i];
  CpuBackend::rope(dx, positions, negated);
}

// out = gelu(g)·u with gelu(g) = ½ g (1 + tanh(v)), v = k (g + c g³). With σ = ½ (1 + tanh v) =
// 1 / (1 + e^(−2v)) (no cancellation for g < 0, as in the forward): gelu = g σ and
// gelu' = σ + 2 g σ (1 − σ) k (1 + 3 c g²), since ½ (1 − tanh² v) = 2 σ (1 − σ).
void BackwardOps<CpuBackend>::gelu_tanh_mul_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                                     Tensor& dgate, Tensor& dup) {
  const std::int64_t n = gate.numel();
  expect_acts("gelu_tanh_mul_backward (gate, up, dout, dgate, dup)", {&gate, &up, &dout, &dgate, &dup},
              up.numel() == n && dout.numel() == n && dgate.numel() == n && dup.numel() == n);
  constexpr float k = 0.7978845608028654f, c = 0.044715f;  // sqrt(2/pi), as the forward
  const float* gp = gate.data<float>();
  const float* upp = up.data<float>();
  const float* dop = dout.data<float>();
  float* dgp = dgate.data<float>();
  float* dupp = dup.data<float>();
  for_each_element(n, [&](std::int64_t i) {
    const float g = gp[i], u = upp[i], d = dop[i];
    const float sig = 1.0f / (1.0f + fast_exp(-2.0f * k * (g + c * g * g * g)));
    const float dgelu = sig + 2.0f * g * sig * (1.0f - sig) * k * (1.0f + 3.0f * c * g * g);
    dgp[i] = d * u * dgelu;
    dupp[i] = d * g * sig;
  });
}

void BackwardOps<CpuBackend>::softcap_backward(const Tensor& y, float cap, const Tensor& dy, Tensor& dx) {
  const std::int64_t n = y.numel();
  FLAS_CHECK(cap > 0, "softcap_backward: cap ", cap, " is not positive");
  expect_acts("softcap_backward (y, dy, dx)", {&y, &dy, &dx}, dy.numel() == n && dx.numel() == n);
  const float* yp = y.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  for_each_element(n, [&](std::int64_t i) {
    const float t = yp[i] / cap;
    dxp[i] = dyp[i] * (1.0f - t * t);
  });
}

// silu(x) = x σ(x); silu'(x) = σ(x) (1 + x (1 − σ(x))).
void BackwardOps<CpuBackend>::silu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const std::int64_t n = x.numel();
  expect_acts("silu_backward (x, dy, dx)", {&x, &dy, &dx}, dy.numel() == n && dx.numel() == n);
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  for_each_element(n, [&](std::int64_t i) {
    const float xi = xp[i], sig = 1.0f / (1.0f + fast_exp(-xi));
    dxp[i] = dyp[i] * sig * (1.0f + xi * (1.0f - sig));
  });
}

}  // namespace flas
