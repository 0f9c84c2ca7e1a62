#pragma once
// The scalar reference backend: plain loops, one element at a time, accumulating in double. It is the
// oracle every optimised backend is tested against (gemma.cpp's scalar twins), and with T = double it
// runs the whole model in f64 for finite-difference checks. Clarity over speed, always.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "flas/core/backend.hpp"
#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"

namespace flas {

template <class T>
struct ScalarBackend {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  using space = HostSpace;
  using scalar = T;
  static constexpr const char* name = std::is_same_v<T, float> ? "scalar-f32" : "scalar-f64";
  static constexpr DType activation_dtype = dtype_of<T>();

  // Reads element i of a weight tensor of any floating dtype as T.
  static T w_at(const Tensor& w, std::int64_t i) { return T(element_as_double(w, i)); }

  static void expect_act(const Tensor& t, const char* op, const char* what) {
    FLAS_CHECK(t.dtype() == activation_dtype, op, ": ", what, " has dtype ", dtype_name(t.dtype()),
               ", expected ", dtype_name(activation_dtype));
  }
  static std::int64_t rows(const Tensor& t) { return t.rank() <= 1 ? 1 : t.numel() / t.dim(-1); }

  static void embedding(const Tensor& ids, const Tensor& table, float scale, Tensor& out) {
    expect_act(out, "embedding", "out");
    const std::int64_t n = ids.numel(), V = table.dim(0), H = table.dim(1);
    FLAS_CHECK(out.numel() == n * H, "embedding: out has ", out.numel(), " elements, expected ", n * H);
    const auto* id = ids.data<std::int64_t>();
    T* o = out.data<T>();
    for (std::int64_t r = 0; r < n; ++r) {
      FLAS_CHECK(0 <= id[r] && id[r] < V, "embedding: token id ", id[r], " outside the vocabulary [0, ", V, ")");
      for (std::int64_t c = 0; c < H; ++c) o[r * H + c] = w_at(table, id[r] * H + c) * T(scale);
    }
  }

  static void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
    expect_act(x, "linear", "x");
    expect_act(y, "linear", "y");
    const std::int64_t N = w.dim(0), K = w.dim(1), M = rows(x);
    FLAS_CHECK(x.dim(-1) == K, "linear: x has inner size ", x.dim(-1), ", weight ", w.shape(), " expects ", K);
    FLAS_CHECK(y.numel() == M * N, "linear: y has ", y.numel(), " elements, expected ", M * N);
    const T* xp = x.data<T>();
    std::vector<T> wrow(static_cast<std::size_t>(K), T(0));
    std::vector<T> out(static_cast<std::size_t>(M * N));  // y may alias x
    for (std::int64_t n = 0; n < N; ++n) {
      for (std::int64_t k = 0; k < K; ++k) wrow[std::size_t(k)] = w_at(w, n * K + k);
      const double b = bias ? element_as_double(*bias, n) : 0.0;
      for (std::int64_t m = 0; m < M; ++m) {
        double acc = 0;
        for (std::int64_t k = 0; k < K; ++k) acc += double(xp[m * K + k]) * double(wrow[std::size_t(k)]);
        out[std::size_t(m * N + n)] = T(acc + b);
      }
    }
    std::copy(out.begin(), out.end(), y.data<T>());
  }

  static void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& y) {
    expect_act(x, "rms_norm", "x");
    const std::int64_t D = x.dim(-1), M = rows(x);
    FLAS_CHECK(w.numel() == D, "rms_norm: weight has ", w.numel(), " elements, expected ", D);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (std::int64_t m = 0; m < M; ++m) {
      double ss = 0;
      for (std::int64_t d = 0; d < D; ++d) ss += double(xp[m * D + d]) * double(xp[m * D + d]);
      const T inv = T(1.0 / std::sqrt(ss / double(D) + double(eps)));
      for (std::int64_t d = 0; d < D; ++d) yp[m * D + d] = xp[m * D + d] * inv * (T(1) + w_at(w, d));
    }
  }

  static void add(Tensor& y, const Tensor& x) {
    FLAS_CHECK(y.numel() == x.numel(), "add: sizes ", y.shape(), " and ", x.shape(), " differ");
    T* yp = y.data<T>();
    const T* xp = x.data<T>();
    for (std::int64_t i = 0; i < y.numel(); ++i) yp[i] += xp[i];
  }

  static void add_gated(Tensor& y, const Tensor& g, const Tensor& x) {
    FLAS_CHECK(y.numel() == x.numel() && y.dim(-1) == g.numel(), "add_gated: y ", y.shape(), ", gate ",
               g.shape(), ", x ", x.shape(), " do not match");
    const std::int64_t D = g.numel();
    T* yp = y.data<T>();
    const T* xp = x.data<T>();
    for (std::int64_t i = 0; i < y.numel(); ++i) yp[i] += w_at(g, i % D) * xp[i];
  }

  static void rope(Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
    const std::int64_t B = x.dim(0), S = x.dim(1), nh = x.dim(2), hd = x.dim(3), half = hd / 2;
    FLAS_CHECK(positions.numel() == B * S, "rope: positions ", positions.shape(), " do not match x ", x.shape());
    FLAS_CHECK(inv_freq.numel() == half, "rope: inv_freq has ", inv_freq.numel(), " entries, expected ", half);
    const auto* pos = positions.data<std::int64_t>();
    const float* f = inv_freq.data<float>();
    T* xp = x.data<T>();
    for (std::int64_t bs = 0; bs < B * S; ++bs) {
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = float(pos[bs]) * f[i];  // f32 angles, as HF
        const T c = T(std::cos(angle)), s = T(std::sin(angle));
        for (std::int64_t h = 0; h < nh; ++h) {
          T* p = xp + (bs * nh + h) * hd;
          const T a = p[i], b = p[i + half];
          p[i] = a * c - b * s;
          p[i + half] = b * c + a * s;
        }
      }
    }
  }

  static T gelu_tanh(T g) {
    const T k = T(0.7978845608028654);  // sqrt(2/pi)
    return T(0.5) * g * (T(1) + std::tanh(k * (g + T(0.044715) * g * g * g)));
  }
  static void gelu_tanh_mul(const Tensor& gate, const Tensor& up, Tensor& out) {
    const T* g = gate.data<T>();
    const T* u = up.data<T>();
    T* o = out.data<T>();
    for (std::int64_t i = 0; i < out.numel(); ++i) o[i] = gelu_tanh(g[i]) * u[i];
  }

  static void softcap(Tensor& x, float cap) {
    T* p = x.data<T>();
    for (std::int64_t i = 0; i < x.numel(); ++i) p[i] = T(cap) * std::tanh(p[i] / T(cap));
  }

  static void attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                        const nn::AttentionParams& p) {
    const std::int64_t B = q.dim(0), Sq = q.dim(1), nH = q.dim(2), hd = q.dim(3);
    const std::int64_t cap = k.dim(1), nKV = k.dim(2), Sk = p.kv_len < 0 ? cap : p.kv_len;
    FLAS_CHECK(nKV > 0 && nH % nKV == 0 && k.dim(3) == hd && v.shape() == k.shape() && Sk <= cap && (Sk >= Sq || !p.causal),
               "attention: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(), ", kv_len ", Sk, " do not fit");
    const std::int64_t group = nH / nKV, past = p.causal ? Sk - Sq : 0;  // cross-attention: no past
    const T* qp = q.data<T>();
    const T* kp = k.data<T>();
    const T* vp = v.data<T>();
    std::vector<T> out_buf(static_cast<std::size_t>(out.numel()));
    std::vector<double> s(static_cast<std::size_t>(Sk));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < Sq; ++i)
        for (std::int64_t h = 0; h < nH; ++h) {
          const T* qv = qp + ((b * Sq + i) * nH + h) * hd;
          const std::int64_t kvh = h / group, qi = past + i;
          for (std::int64_t j = 0; j < Sk; ++j) {
            const T* kv = kp + ((b * cap + j) * nKV + kvh) * hd;
            double dot = 0;
            for (std::int64_t d = 0; d < hd; ++d) dot += double(qv[d]) * double(kv[d]);
            T sc = T(dot) * T(p.scale);
            if (p.softcap > 0) sc = T(p.softcap) * std::tanh(sc / T(p.softcap));
            const bool pad = p.key_valid && !p.key_valid[b * cap + j];
            const bool future = p.causal && j > qi;
            const bool outside = p.causal && p.window > 0 && qi - j >= p.window;
            switch (p.rule) {
              case nn::MaskRule::hf_min:
                if (pad || future || outside) sc = T(nn::hf_mask_value);
                break;
              case nn::MaskRule::flas_additive:
                sc += T(future ? nn::flas_mask_value : 0.0f) + T(pad ? nn::flas_mask_value : 0.0f);
                break;
              case nn::MaskRule::replace_neg1e4:
                if (pad || future) sc = T(nn::flas_mask_value);
                break;
            }
            s[std::size_t(j)] = double(sc);
          }
          const double mx = *std::max_element(s.begin(), s.begin() + Sk);
          double z = 0;
          for (std::int64_t j = 0; j < Sk; ++j) z += (s[std::size_t(j)] = std::exp(s[std::size_t(j)] - mx));
          T* o = out_buf.data() + ((b * Sq + i) * nH + h) * hd;
          for (std::int64_t d = 0; d < hd; ++d) {
            double acc = 0;
            for (std::int64_t j = 0; j < Sk; ++j)
              acc += s[std::size_t(j)] / z * double(vp[((b * cap + j) * nKV + kvh) * hd + d]);
            o[d] = T(acc);
          }
        }
    std::copy(out_buf.begin(), out_buf.end(), out.data<T>());
  }

#if defined(__GNUC__) && !defined(__clang__)
  __attribute__((optimize("fp-contract=off")))  // h + dt·v rounded twice, as PyTorch does
#endif
  static void axpy(Tensor& y, float a, const Tensor& x) {
    T* yp = y.data<T>();
    const T* xp = x.data<T>();
    for (std::int64_t i = 0; i < y.numel(); ++i) yp[i] += T(a) * xp[i];
  }
  static void scale(Tensor& x, float a) {
    T* p = x.data<T>();
    for (std::int64_t i = 0; i < x.numel(); ++i) p[i] *= T(a);
  }
  static void copy(Tensor& dst, const Tensor& src) {
    FLAS_CHECK(dst.bytes() == src.bytes() && dst.dtype() == src.dtype(), "copy: ", dst.shape(), " ",
               dtype_name(dst.dtype()), " <- ", src.shape(), " ", dtype_name(src.dtype()));
    std::memmove(dst.raw(), src.raw(), src.bytes());
  }
  static void fill(Tensor& x, float value) { std::fill_n(x.data<T>(), x.numel(), T(value)); }
};

static_assert(Backend<ScalarBackend<float>>);
static_assert(Backend<ScalarBackend<double>>);

}  // namespace flas
