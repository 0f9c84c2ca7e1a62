#pragma once
// BackwardOps<KokkosBackend<E>>: linear, the row-wise and the element-wise VJPs (attention's is in
// attention_backward.hpp). Element-wise kernels read an element's inputs before writing its output, so a
// cotangent output may alias an input where the op set allows it.
#include <KokkosBlas3_gemm.hpp>

#include "flas/backends/kokkos/views.hpp"
#include "flas/backends/kokkos_backward.hpp"

namespace flas {


template <class E>
void BackwardOps<KokkosBackend<E>>::linear_backward(const tensor& x, const tensor& w, const tensor& dy, tensor* dx,
                                                    tensor* dw, tensor* db) {
  using namespace kokkos_detail;
  using Mem = typename E::memory_space;
  using matrix = Kokkos::View<float**, Kokkos::LayoutRight, Mem>;
  using cmatrix = Kokkos::View<const float**, Kokkos::LayoutRight, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  using umatrix = Kokkos::View<float**, Kokkos::LayoutRight, Mem, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  kokkos_ensure_initialized();
  expect_f32(x, "linear_backward", "x");
  expect_f32(dy, "linear_backward", "dy");
  FLAS_CHECK(w.rank() == 2, "linear_backward: weight must be [N, K], got ", w.shape());
  const std::int64_t N = w.dim(0), K = w.dim(1), M = rows(x);
  FLAS_CHECK(x.rank() >= 1 && x.dim(-1) == K && dy.numel() == M * N, "linear_backward: x ", x.shape(), ", w ",
             w.shape(), ", dy ", dy.shape(), " do not match");
  const Weight ww = weight(w, "linear_backward", "weight");
  if (dx) {
    expect_f32(*dx, "linear_backward", "dx");
    FLAS_CHECK(dx->numel() == M * K, "linear_backward: dx ", dx->shape(), " does not match x ", x.shape());
  }
  if (dw) expect_param_grad(*dw, N * K, "linear_backward", "dw");
  if (db) expect_param_grad(*db, N, "linear_backward", "db");
  const cmatrix DY(dy.template data<float>(), std::size_t(M), std::size_t(N));
  if (dx && M > 0 && K > 0) {
    umatrix DX(dx->template data<float>(), std::size_t(M), std::size_t(K));
    if (N == 0) {
      Kokkos::deep_copy(DX, 0.0f);
    } else {
      matrix wide, out;  // bf16 weights widened; a scratch result where dx overlaps dy (gemm cannot alias)
      const float* wp = ww.f;
      if (!wp) {
        wide = matrix(Kokkos::ViewAllocateWithoutInitializing("flas::linear_bw_w32"), N, K);
        float* dst = wide.data();
        Kokkos::parallel_for("flas::linear_bw_widen", Kokkos::RangePolicy<E>(0, N * K),
                             KOKKOS_LAMBDA(std::int64_t i) { dst[i] = ww(i); });
        wp = wide.data();
      }
      const bool alias = overlaps(*dx, dy) || overlaps(*dx, x);
      if (alias) out = matrix(Kokkos::ViewAllocateWithoutInitializing("flas::linear_bw_dx"), M, K);
      umatrix target = alias ? umatrix(out.data(), std::size_t(M), std::size_t(K)) : DX;
      KokkosBlas::gemm("N", "N", 1.0f, DY, cmatrix(wp, std::size_t(N), std::size_t(K)), 0.0f, target);
      if (alias) Kokkos::deep_copy(DX, target);
    }
  }
  if (dw && M > 0 && N > 0 && K > 0) {
    umatrix DW(dw->template data<float>(), std::size_t(N), std::size_t(K));
    KokkosBlas::gemm("T", "N", 1.0f, DY, cmatrix(x.template data<float>(), std::size_t(M), std::size_t(K)), 1.0f, DW);
  }
  if (db && M > 0) {
    float* dbp = db->template data<float>();
    const float* dyp = dy.template data<float>();
    Kokkos::parallel_for(
        "flas::linear_bw_db", Kokkos::RangePolicy<E>(0, N), KOKKOS_LAMBDA(std::int64_t n) {
          double acc = 0;
          for (std::int64_t m = 0; m < M; ++m) acc += double(dyp[m * N + n]);
          dbp[n] = float(double(dbp[n]) + acc);
        });
  }
}

template <class E>
void BackwardOps<KokkosBackend<E>>::rms_norm_backward(const tensor& x, const tensor& w, float eps, const tensor& dy,
                                                      tensor& dx, tensor* dw) {
  using namespace kokkos_detail;
  using Mem = typename E::memory_space;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("rms_norm_backward", "x, dy or dx", {&x, &dy, &dx});
  const std::int64_t D = x.dim(-1), M = rows(x);
  FLAS_CHECK(w.numel() == D && dy.numel() == x.numel() && dx.numel() == x.numel(), "rms_norm_backward: x ",
             x.shape(), ", w ", w.shape(), ", dy ", dy.shape(), ", dx ", dx.shape(), " do not match");
  if (dw) expect_param_grad(*dw, D, "rms_norm_backward", "dw");
  const Weight ww = weight(w, "rms_norm_backward", "weight");
  const float* xp = x.template data<float>();
  const float* dyp = dy.template data<float>();
  float* dxp = dx.template data<float>();
  // Per row: r = (mean x² + eps)^−½ and a = Σ_d dy_d (1 + w_d) x_d, both before dx (may be dy) is written.
  Kokkos::View<double*, Mem> r("flas::rms_bw_r", M), a("flas::rms_bw_a", M);
  using team_t = typename Kokkos::TeamPolicy<E>::member_type;
  Kokkos::parallel_for(
      "flas::rms_norm_bw_rows", Kokkos::TeamPolicy<E>(M, Kokkos::AUTO), KOKKOS_LAMBDA(const team_t& team) {
        const std::int64_t m = team.league_rank();
        double ss = 0, acc = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, D),
            [&](std::int64_t d, double& s) { s += double(xp[m * D + d]) * double(xp[m * D + d]); }, ss);
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, D),
            [&](std::int64_t d, double& s) {
              s += double(dyp[m * D + d]) * double(1.0f + ww(d)) * double(xp[m * D + d]);
            },
            acc);
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          r(m) = 1.0 / kmath::sqrt(ss / double(D) + double(eps));
          a(m) = acc;
        });
      });
  if (dw) {
    float* dwp = dw->template data<float>();
    Kokkos::parallel_for(
        "flas::rms_norm_bw_dw", Kokkos::RangePolicy<E>(0, D), KOKKOS_LAMBDA(std::int64_t d) {
          double acc = 0;
          for (std::int64_t m = 0; m < M; ++m) acc += r(m) * double(xp[m * D + d]) * double(dyp[m * D + d]);
          dwp[d] = float(double(dwp[d]) + acc);
        });
  }
  Kokkos::parallel_for(
      "flas::rms_norm_bw_dx", Kokkos::RangePolicy<E>(0, M * D), KOKKOS_LAMBDA(std::int64_t i) {
        const std::int64_t m = i / D, d = i % D;
        const double rm = r(m), xd = double(xp[i]), g = double(dyp[i]);
        dxp[i] = float(rm * double(1.0f + ww(d)) * g - rm * rm * rm / double(D) * xd * a(m));
      });
}

template <class E>
void BackwardOps<KokkosBackend<E>>::add_gated_backward(const tensor& g, const tensor& x, const tensor& dy, tensor& dx,
                                                       tensor* dg) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("add_gated_backward", "x, dy or dx", {&x, &dy, &dx});
  const std::int64_t D = g.numel(), n = x.numel();
  FLAS_CHECK(D > 0 && x.rank() >= 1 && x.dim(-1) == D && dy.numel() == n && dx.numel() == n,
             "add_gated_backward: gate ", g.shape(), ", x ", x.shape(), ", dy ", dy.shape(), ", dx ", dx.shape(),
             " do not match");
  if (dg) expect_param_grad(*dg, D, "add_gated_backward", "dg");
  const Weight gw = weight(g, "add_gated_backward", "gate");
  const float* xp = x.template data<float>();
  const float* dyp = dy.template data<float>();
  float* dxp = dx.template data<float>();
  if (dg) {  // before dx, which may be dy
    float* dgp = dg->template data<float>();
    const std::int64_t M = n / D;
    Kokkos::parallel_for(
        "flas::add_gated_bw_dg", Kokkos::RangePolicy<E>(0, D), KOKKOS_LAMBDA(std::int64_t d) {
          double acc = 0;
          for (std::int64_t m = 0; m < M; ++m) acc += double(dyp[m * D + d]) * double(xp[m * D + d]);
          dgp[d] = float(double(dgp[d]) + acc);
        });
  }
  Kokkos::parallel_for("flas::add_gated_bw_dx", Kokkos::RangePolicy<E>(0, n),
                       KOKKOS_LAMBDA(std::int64_t i) { dxp[i] = float(double(gw(i % D)) * double(dyp[i])); });
}

// The forward rotates each (i, i + hd/2) pair by +angle; its transpose rotates by −angle.
template <class E>
void BackwardOps<KokkosBackend<E>>::rope_backward(tensor& dx, const tensor& positions, const tensor& inv_freq) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(dx, "rope_backward", "dx");
  expect_i64(positions, "rope_backward", "positions");
  expect_f32(inv_freq, "rope_backward", "inv_freq");
  FLAS_CHECK(dx.rank() == 4, "rope_backward: dx must be [B, S, heads, head_dim], got ", dx.shape());
  const std::int64_t B = dx.dim(0), S = dx.dim(1), nh = dx.dim(2), hd = dx.dim(3), half = hd / 2;
  FLAS_CHECK(positions.numel() == B * S, "rope_backward: positions ", positions.shape(), " do not match dx ",
             dx.shape());
  FLAS_CHECK(inv_freq.numel() == half, "rope_backward: inv_freq has ", inv_freq.numel(), " entries, expected ", half);
  if (B * S == 0 || half == 0) return;
  const std::int64_t* pos = positions.template data<std::int64_t>();
  const float* f = inv_freq.template data<float>();
  float* p = dx.template data<float>();
  Kokkos::parallel_for(
      "flas::rope_bw", Kokkos::MDRangePolicy<E, Kokkos::Rank<2>>({0, 0}, {B * S, half}),
      KOKKOS_LAMBDA(std::int64_t bs, std::int64_t i) {
        const float angle = float(pos[bs]) * f[i];  // f32 angles, exactly as the forward
        const double c = double(kmath::cos(angle)), s = double(kmath::sin(angle));
        for (std::int64_t h = 0; h < nh; ++h) {
          const std::int64_t base = (bs * nh + h) * hd;
          const double a = double(p[base + i]), b = double(p[base + i + half]);
          p[base + i] = float(a * c + b * s);
          p[base + i + half] = float(b * c - a * s);
        }
      });
}

// out = gelu(g)·u with gelu(g) = ½ g (1 + tanh(u(g))), u(g) = k (g + 0.044715 g³).
template <class E>
void BackwardOps<KokkosBackend<E>>::gelu_tanh_mul_backward(const tensor& gate, const tensor& up, const tensor& dout,
                                                           tensor& dgate, tensor& dup) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("gelu_tanh_mul_backward", "one of gate, up, dout, dgate, dup",
                                                {&gate, &up, &dout, &dgate, &dup});
  const std::int64_t n = gate.numel();
  FLAS_CHECK(up.numel() == n && dout.numel() == n && dgate.numel() == n && dup.numel() == n,
             "gelu_tanh_mul_backward: gate ", gate.shape(), ", up ", up.shape(), ", dout ", dout.shape(), ", dgate ",
             dgate.shape(), ", dup ", dup.shape(), " do not match");
  const float* gp = gate.template data<float>();
  const float* upp = up.template data<float>();
  const float* dop = dout.template data<float>();
  float* dgp = dgate.template data<float>();
  float* dupp = dup.template data<float>();
  Kokkos::parallel_for(
      "flas::gelu_tanh_mul_bw", Kokkos::RangePolicy<E>(0, n), KOKKOS_LAMBDA(std::int64_t i) {
        constexpr double k = 0.7978845608028654, c = 0.044715;  // sqrt(2/pi), as the forward
        const double g = double(gp[i]), u = double(upp[i]), d = double(dop[i]);
        const double t = kmath::tanh(k * (g + c * g * g * g));
        const double gelu = 0.5 * g * (1 + t);
        const double dgelu = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * k * (1 + 3 * c * g * g);
        dgp[i] = float(d * u * dgelu);
        dupp[i] = float(d * gelu);
      });
}

template <class E>
void BackwardOps<KokkosBackend<E>>::softcap_backward(const tensor& y, float cap, const tensor& dy, tensor& dx) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("softcap_backward", "one of y, dy, dx", {&y, &dy, &dx});
  const std::int64_t n = y.numel();
  FLAS_CHECK(cap > 0 && dy.numel() == n && dx.numel() == n, "softcap_backward: cap ", cap, ", y ", y.shape(),
             ", dy ", dy.shape(), ", dx ", dx.shape(), " do not fit");
  const float* yp = y.template data<float>();
  const float* dyp = dy.template data<float>();
  float* dxp = dx.template data<float>();
  const double c = double(cap);
  Kokkos::parallel_for(
      "flas::softcap_bw", Kokkos::RangePolicy<E>(0, n), KOKKOS_LAMBDA(std::int64_t i) {
        const double t = double(yp[i]) / c;
        dxp[i] = float(double(dyp[i]) * (1 - t * t));
      });
}

// silu(x) = x σ(x); silu'(x) = σ(x) (1 + x (1 − σ(x))).
template <class E>
void BackwardOps<KokkosBackend<E>>::silu_backward(const tensor& x, const tensor& dy, tensor& dx) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("silu_backward", "one of x, dy, dx", {&x, &dy, &dx});
  const std::int64_t n = x.numel();
  FLAS_CHECK(dy.numel() == n && dx.numel() == n, "silu_backward: x ", x.shape(), ", dy ", dy.shape(), ", dx ",
             dx.shape(), " do not match");
  const float* xp = x.template data<float>();
  const float* dyp = dy.template data<float>();
  float* dxp = dx.template data<float>();
  Kokkos::parallel_for(
      "flas::silu_bw", Kokkos::RangePolicy<E>(0, n), KOKKOS_LAMBDA(std::int64_t i) {
        const double xi = double(xp[i]), sig = 1.0 / (1.0 + kmath::exp(-xi));
        dxp[i] = float(double(dyp[i]) * sig * (1 + xi * (1 - sig)));
      });
}

}  // namespace flas
