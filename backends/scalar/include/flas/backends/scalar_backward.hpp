#pragma once
// BackwardOps for the scalar reference backend: the exact VJPs of ScalarBackend<T>'s forwards, plain
// loops accumulating in double. With T = double it is the oracle every optimised backward is tested
// against (and is itself tested against finite differences). Parameter gradients are in T, like the
// activations. Element-wise ops read an element's inputs before writing its output, so a cotangent
// output may alias an input where the op set says so.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "flas/backends/scalar.hpp"
#include "flas/backends/scalar_attention_backward.hpp"
#include "flas/core/backward.hpp"
#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"

namespace flas {

template <class T>
struct BackwardOps<ScalarBackend<T>> {
  using Fwd = ScalarBackend<T>;

  static void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                              Tensor* db) {
    const std::int64_t N = w.dim(0), K = w.dim(1), M = Fwd::rows(x);
    Fwd::expect_act(x, "linear_backward", "x");
    Fwd::expect_act(dy, "linear_backward", "dy");
    FLAS_CHECK(x.dim(-1) == K && dy.numel() == M * N, "linear_backward: x ", x.shape(), ", w ", w.shape(), ", dy ",
               dy.shape(), " do not match");
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    if (dx) {
      Fwd::expect_act(*dx, "linear_backward", "dx");
      FLAS_CHECK(dx->numel() == M * K, "linear_backward: dx ", dx->shape(), " does not match x ", x.shape());
      std::vector<double> wt(static_cast<std::size_t>(N * K));  // the weight as the forward sees it (rounded to T)
      for (std::int64_t i = 0; i < N * K; ++i) wt[std::size_t(i)] = double(Fwd::w_at(w, i));
      T* dxp = dx->data<T>();
      std::vector<double> row(static_cast<std::size_t>(K));
      for (std::int64_t m = 0; m < M; ++m) {
        std::fill(row.begin(), row.end(), 0.0);
        for (std::int64_t n = 0; n < N; ++n) {
          const double g = double(dyp[m * N + n]);
          for (std::int64_t k = 0; k < K; ++k) row[std::size_t(k)] += g * wt[std::size_t(n * K + k)];
        }
        for (std::int64_t k = 0; k < K; ++k) dxp[m * K + k] = T(row[std::size_t(k)]);
      }
    }
    if (dw) {
      expect_param_grad(*dw, w.numel(), "linear_backward", "dw");
      T* dwp = dw->data<T>();
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t k = 0; k < K; ++k) {
          double acc = 0;
          for (std::int64_t m = 0; m < M; ++m) acc += double(dyp[m * N + n]) * double(xp[m * K + k]);
          accumulate(dwp[n * K + k], acc);
        }
    }
    if (db) {
      expect_param_grad(*db, N, "linear_backward", "db");
      T* dbp = db->data<T>();
      for (std::int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (std::int64_t m = 0; m < M; ++m) acc += double(dyp[m * N + n]);
        accumulate(dbp[n], acc);
      }
    }
  }

  // y_d = x_d·r·(1 + w_d), r = (mean x² + eps)^−½, so with a = Σ_e dy_e (1 + w_e) x_e:
  // dx_d = r (1 + w_d) dy_d − r³ x_d a / D and dw_d += r x_d dy_d.
  static void rms_norm_backward(const Tensor& x, const Tensor& w, float eps, const Tensor& dy, Tensor& dx,
                                Tensor* dw) {
    expect_acts("rms_norm_backward", "x, dy or dx", {&x, &dy, &dx});
    const std::int64_t D = x.dim(-1), M = Fwd::rows(x);
    FLAS_CHECK(w.numel() == D && dy.numel() == x.numel() && dx.numel() == x.numel(), "rms_norm_backward: x ",
               x.shape(), ", w ", w.shape(), ", dy ", dy.shape(), ", dx ", dx.shape(), " do not match");
    if (dw) expect_param_grad(*dw, D, "rms_norm_backward", "dw");
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    std::vector<double> gain(static_cast<std::size_t>(D)), dw_acc(dw ? static_cast<std::size_t>(D) : 0, 0.0);
    for (std::int64_t d = 0; d < D; ++d) gain[std::size_t(d)] = double(T(1) + Fwd::w_at(w, d));
    for (std::int64_t m = 0; m < M; ++m) {
      const T* xr = xp + m * D;
      const T* dyr = dyp + m * D;
      double ss = 0, a = 0;
      for (std::int64_t d = 0; d < D; ++d) {
        ss += double(xr[d]) * double(xr[d]);
        a += double(dyr[d]) * gain[std::size_t(d)] * double(xr[d]);
      }
      const double r = 1.0 / std::sqrt(ss / double(D) + double(eps));
      const double r3_over_D = r * r * r / double(D);
      for (std::int64_t d = 0; d < D; ++d) {
        const double xd = double(xr[d]), g = double(dyr[d]);  // read before dx (may be dy) is written
        if (dw) dw_acc[std::size_t(d)] += r * xd * g;
        dxp[m * D + d] = T(r * gain[std::size_t(d)] * g - r3_over_D * xd * a);
      }
    }
    if (dw)
      for (std::int64_t d = 0; d < D; ++d) accumulate(dw->data<T>()[d], dw_acc[std::size_t(d)]);
  }

  static void add_gated_backward(const Tensor& g, const Tensor& x, const Tensor& dy, Tensor& dx, Tensor* dg) {
    expect_acts("add_gated_backward", "x, dy or dx", {&x, &dy, &dx});
    const std::int64_t D = g.numel(), n = x.numel();
    FLAS_CHECK(D > 0 && x.dim(-1) == D && dy.numel() == n && dx.numel() == n, "add_gated_backward: gate ",
               g.shape(), ", x ", x.shape(), ", dy ", dy.shape(), ", dx ", dx.shape(), " do not match");
    if (dg) expect_param_grad(*dg, D, "add_gated_backward", "dg");
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    std::vector<double> gate(static_cast<std::size_t>(D)), dg_acc(dg ? static_cast<std::size_t>(D) : 0, 0.0);
    for (std::int64_t d = 0; d < D; ++d) gate[std::size_t(d)] = double(Fwd::w_at(g, d));
    for (std::int64_t i = 0; i < n; ++i) {
      const double xi = double(xp[i]), gi = double(dyp[i]);
      if (dg) dg_acc[std::size_t(i % D)] += gi * xi;
      dxp[i] = T(gate[std::size_t(i % D)] * gi);
    }
    if (dg)
      for (std::int64_t d = 0; d < D; ++d) accumulate(dg->data<T>()[d], dg_acc[std::size_t(d)]);
  }

  // The forward rotates each (i, i + hd/2) pair by +angle; its transpose rotates by −angle.
  static void rope_backward(Tensor& dx, const Tensor& positions, const Tensor& inv_freq) {
    Fwd::expect_act(dx, "rope_backward", "dx");
    const std::int64_t B = dx.dim(0), S = dx.dim(1), nh = dx.dim(2), hd = dx.dim(3), half = hd / 2;
    FLAS_CHECK(positions.numel() == B * S, "rope_backward: positions ", positions.shape(), " do not match dx ",
               dx.shape());
    FLAS_CHECK(inv_freq.numel() == half, "rope_backward: inv_freq has ", inv_freq.numel(), " entries, expected ", half);
    const auto* pos = positions.data<std::int64_t>();
    const float* f = inv_freq.data<float>();
    T* p0 = dx.data<T>();
    for (std::int64_t bs = 0; bs < B * S; ++bs)
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = float(pos[bs]) * f[i];  // f32 angles, exactly as the forward
        const double c = double(T(std::cos(angle))), s = double(T(std::sin(angle)));
        for (std::int64_t h = 0; h < nh; ++h) {
          T* p = p0 + (bs * nh + h) * hd;
          const double a = double(p[i]), b = double(p[i + half]);
          p[i] = T(a * c + b * s);
          p[i + half] = T(b * c - a * s);
        }
      }
  }

  // out = gelu(g)·u with gelu(g) = ½ g (1 + tanh(u(g))), u(g) = k (g + 0.044715 g³).
  static void gelu_tanh_mul_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor& dgate,
                                     Tensor& dup) {
    expect_acts("gelu_tanh_mul_backward", "one of gate, up, dout, dgate, dup", {&gate, &up, &dout, &dgate, &dup});
    const std::int64_t n = gate.numel();
    FLAS_CHECK(up.numel() == n && dout.numel() == n && dgate.numel() == n && dup.numel() == n,
               "gelu_tanh_mul_backward: gate ", gate.shape(), ", up ", up.shape(), ", dout ", dout.shape(),
               ", dgate ", dgate.shape(), ", dup ", dup.shape(), " do not match");
    constexpr double k = 0.7978845608028654, c = 0.044715;  // sqrt(2/pi), as the forward
    const T* gp = gate.data<T>();
    const T* up_p = up.data<T>();
    const T* dop = dout.data<T>();
    T* dgp = dgate.data<T>();
    T* dup_p = dup.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double g = double(gp[i]), u = double(up_p[i]), d = double(dop[i]);
      const double t = std::tanh(k * (g + c * g * g * g));
      const double gelu = 0.5 * g * (1 + t);
      const double dgelu = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * k * (1 + 3 * c * g * g);
      dgp[i] = T(d * u * dgelu);
      dup_p[i] = T(d * gelu);
    }
  }

  static void softcap_backward(const Tensor& y_capped, float cap, const Tensor& dy, Tensor& dx) {
    expect_acts("softcap_backward", "one of y, dy, dx", {&y_capped, &dy, &dx});
    const std::int64_t n = y_capped.numel();
    FLAS_CHECK(cap > 0 && dy.numel() == n && dx.numel() == n, "softcap_backward: cap ", cap, ", y ",
               y_capped.shape(), ", dy ", dy.shape(), ", dx ", dx.shape(), " do not fit");
    const T* yp = y_capped.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const double c = double(T(cap));
    for (std::int64_t i = 0; i < n; ++i) {
      const double t = double(yp[i]) / c;
      dxp[i] = T(double(dyp[i]) * (1 - t * t));
    }
  }

  static void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                 const Tensor& dout, const nn::AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv) {
    scalar_backward_detail::attention_backward<T>(q, k, v, out, dout, p, dq, dk, dv);
  }

  // silu(x) = x σ(x); silu'(x) = σ(x) (1 + x (1 − σ(x))).
  static void silu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
    expect_acts("silu_backward", "one of x, dy, dx", {&x, &dy, &dx});
    const std::int64_t n = x.numel();
    FLAS_CHECK(dy.numel() == n && dx.numel() == n, "silu_backward: x ", x.shape(), ", dy ", dy.shape(), ", dx ",
               dx.shape(), " do not match");
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double xi = double(xp[i]), sig = 1.0 / (1.0 + std::exp(-xi));
      dxp[i] = T(double(dyp[i]) * sig * (1 + xi * (1 - sig)));
    }
  }

  // Mean over rows whose label is not ignore_label of −log softmax(logits)[label], in double; dlogits
  // (may be logits itself) = (softmax − onehot)/count on those rows, 0 on ignored rows. With no
  // counted row the loss is 0 and the gradient 0 (HF would return NaN, which would poison training).
  static double cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits) {
    Fwd::expect_act(logits, "cross_entropy", "logits");
    const std::int64_t V = logits.dim(-1), M = Fwd::rows(logits);
    FLAS_CHECK(V > 0 && labels.dtype() == DType::I64 && labels.numel() == M, "cross_entropy: labels ",
               dtype_name(labels.dtype()), " ", labels.shape(), " do not match logits ", logits.shape(),
               " (expected I64 with one label per row)");
    if (dlogits) {
      Fwd::expect_act(*dlogits, "cross_entropy", "dlogits");
      FLAS_CHECK(dlogits->numel() == logits.numel(), "cross_entropy: dlogits ", dlogits->shape(),
                 " does not match logits ", logits.shape());
    }
    const auto* lab = labels.data<std::int64_t>();
    std::int64_t count = 0;
    for (std::int64_t m = 0; m < M; ++m) {
      FLAS_CHECK(lab[m] == ignore_label || (0 <= lab[m] && lab[m] < V), "cross_entropy: label ", lab[m],
                 " at row ", m, " is outside [0, ", V, ") and not ", ignore_label);
      count += lab[m] != ignore_label;
    }
    const T* lp = logits.data<T>();
    T* dp = dlogits ? dlogits->data<T>() : nullptr;
    const double inv_count = count ? 1.0 / double(count) : 0.0;
    double total = 0;
    for (std::int64_t m = 0; m < M; ++m) {
      const T* row = lp + m * V;
      T* drow = dp ? dp + m * V : nullptr;
      if (lab[m] == ignore_label) {
        if (drow) std::fill_n(drow, V, T(0));
        continue;
      }
      double mx = double(row[0]);
      for (std::int64_t c = 1; c < V; ++c) mx = std::max(mx, double(row[c]));
      double z = 0;
      for (std::int64_t c = 0; c < V; ++c) z += std::exp(double(row[c]) - mx);
      total += mx + std::log(z) - double(row[lab[m]]);
      if (!drow) continue;
      for (std::int64_t c = 0; c < V; ++c) {  // drow may be row: each element is read just before it is written
        const double prob = std::exp(double(row[c]) - mx) / z;
        drow[c] = T((prob - (c == lab[m] ? 1.0 : 0.0)) * inv_count);
      }
    }
    return total * inv_count;
  }

 private:
  static void expect_param_grad(const Tensor& g, std::int64_t n, const char* op, const char* what) {
    FLAS_CHECK(g.dtype() == dtype_of<T>() && g.numel() == n, op, ": ", what, " is ", dtype_name(g.dtype()), " ",
               g.shape(), ", expected ", dtype_name(dtype_of<T>()), " with ", n, " elements");
  }
  static void expect_acts(const char* op, const char* what, std::initializer_list<const Tensor*> ts) {
    for (const Tensor* t : ts) Fwd::expect_act(*t, op, what);
  }
  static void accumulate(T& into, double add) { into = T(double(into) + add); }
};

static_assert(TrainableBackend<ScalarBackend<float>>);
static_assert(TrainableBackend<ScalarBackend<double>>);

}  // namespace flas
