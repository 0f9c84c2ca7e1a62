#pragma once
// The VJP of ScalarBackend<T>::attention, kept apart from the element-wise VJPs because it is the one
// that must mirror the forward's mask logic line by line. Probabilities are recomputed from q and k
// (scale → soft-cap → mask rule → softmax, with the forward's own roundings to T); everything after
// that is accumulated in double.
//
// Per query row, with p = softmax(s), dP_j = dout·v_j and D = Σ_j p_j dP_j:
//   dv_j += p_j dout;   ds_j = p_j (dP_j − D);   draw_j = ds_j · ∂s_j/∂raw_j;   dq += draw_j k_j · scale;
//   dk_j += draw_j q · scale.
// ∂s_j/∂raw_j is the soft-cap's 1 − tanh² for entries whose score survives the mask: always under
// flas_additive (its −1e4 terms are added constants), never for masked entries under hf_min and
// replace_neg1e4 (they are replaced by constants). D is recomputed rather than read as dout·out: the
// forward's `out` is rounded to T, the recomputed sum is not.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "flas/backends/scalar.hpp"
#include "flas/core/error.hpp"
#include "flas/core/tensor.hpp"
#include "flas/core/attention_params.hpp"

namespace flas::scalar_backward_detail {

template <class T>
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                        const nn::AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv) {
  using Fwd = ScalarBackend<T>;
  for (const Tensor* t : std::initializer_list<const Tensor*>{&q, &k, &v, &dout, &dq, &dk, &dv})
    Fwd::expect_act(*t, "attention_backward", "one of q, k, v, dout, dq, dk, dv");
  const std::int64_t B = q.dim(0), Sq = q.dim(1), nH = q.dim(2), hd = q.dim(3);
  const std::int64_t cap = k.dim(1), nKV = k.dim(2), Sk = p.kv_len < 0 ? cap : p.kv_len;
  FLAS_CHECK(nKV > 0 && Sk > 0 && nH % nKV == 0 && k.dim(3) == hd && v.shape() == k.shape() && Sk <= cap &&
                 (Sk >= Sq || !p.causal),
             "attention_backward: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(), ", kv_len ", Sk,
             " do not fit");
  FLAS_CHECK(out.shape() == q.shape() && dout.shape() == q.shape() && dq.shape() == q.shape() &&
                 dk.shape() == k.shape() && dv.shape() == v.shape(),
             "attention_backward: out ", out.shape(), ", dout ", dout.shape(), ", dq ", dq.shape(), ", dk ",
             dk.shape(), ", dv ", dv.shape(), " must match q ", q.shape(), " and k/v ", k.shape());
  const std::int64_t group = nH / nKV, past = p.causal ? Sk - Sq : 0;
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* dop = dout.data<T>();
  const double scale = double(T(p.scale));
  auto kv_index = [&](std::int64_t b, std::int64_t j, std::int64_t kvh) { return ((b * cap + j) * nKV + kvh) * hd; };

  // dk/dv sum over query rows and the heads of a group: collect them in double, add to T once.
  std::vector<double> dk_acc(static_cast<std::size_t>(B * Sk * nKV * hd), 0.0), dv_acc(dk_acc.size(), 0.0);
  auto acc_index = [&](std::int64_t b, std::int64_t j, std::int64_t kvh) { return std::size_t(((b * Sk + j) * nKV + kvh) * hd); };
  const auto keys = static_cast<std::size_t>(Sk);
  std::vector<double> s(keys), score_slope(keys), dP(keys), dq_row(static_cast<std::size_t>(hd));

  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < Sq; ++i)
      for (std::int64_t h = 0; h < nH; ++h) {
        const std::int64_t row = ((b * Sq + i) * nH + h) * hd;
        const T* qv = qp + row;
        const T* dov = dop + row;
        const std::int64_t kvh = h / group, qi = past + i;
        // Forward recomputation; score_slope_j holds ∂s_j/∂raw_j (0 where s_j is a constant).
        for (std::int64_t j = 0; j < Sk; ++j) {
          const T* kv = kp + kv_index(b, j, kvh);
          double dot = 0;
          for (std::int64_t d = 0; d < hd; ++d) dot += double(qv[d]) * double(kv[d]);
          T sc = T(dot) * T(p.scale);
          double through = 1.0;
          if (p.softcap > 0) {
            const T t = std::tanh(sc / T(p.softcap));
            sc = T(p.softcap) * t;
            through = 1.0 - double(t) * double(t);
          }
          const bool pad = p.key_valid && !p.key_valid[b * cap + j];
          const bool future = p.causal && j > qi;
          const bool outside = p.causal && p.window > 0 && qi - j >= p.window;
          switch (p.rule) {
            case nn::MaskRule::hf_min:
              if (pad || future || outside) {
                sc = T(nn::hf_mask_value);
                through = 0.0;
              }
              break;
            case nn::MaskRule::flas_additive:
              sc += T(future ? nn::flas_mask_value : 0.0f) + T(pad ? nn::flas_mask_value : 0.0f);
              break;
            case nn::MaskRule::replace_neg1e4:
              if (pad || future) {
                sc = T(nn::flas_mask_value);
                through = 0.0;
              }
              break;
          }
          s[std::size_t(j)] = double(sc);
          score_slope[std::size_t(j)] = through;
        }
        const double mx = *std::max_element(s.begin(), s.begin() + Sk);
        double z = 0;
        for (std::int64_t j = 0; j < Sk; ++j) z += (s[std::size_t(j)] = std::exp(s[std::size_t(j)] - mx));
        // s now holds unnormalised probabilities; prob_j = s_j / z.
        double D = 0;
        for (std::int64_t j = 0; j < Sk; ++j) {
          const T* vv = vp + kv_index(b, j, kvh);
          double acc = 0;
          for (std::int64_t d = 0; d < hd; ++d) acc += double(dov[d]) * double(vv[d]);
          dP[std::size_t(j)] = acc;
          D += s[std::size_t(j)] / z * acc;
        }
        std::fill(dq_row.begin(), dq_row.end(), 0.0);
        for (std::int64_t j = 0; j < Sk; ++j) {
          const double prob = s[std::size_t(j)] / z;
          double* dva = dv_acc.data() + acc_index(b, j, kvh);
          for (std::int64_t d = 0; d < hd; ++d) dva[d] += prob * double(dov[d]);
          const double draw = prob * (dP[std::size_t(j)] - D) * score_slope[std::size_t(j)] * scale;
          if (draw == 0.0) continue;
          const T* kv = kp + kv_index(b, j, kvh);
          double* dka = dk_acc.data() + acc_index(b, j, kvh);
          for (std::int64_t d = 0; d < hd; ++d) {
            dq_row[std::size_t(d)] += draw * double(kv[d]);
            dka[d] += draw * double(qv[d]);
          }
        }
        T* dqv = dq.data<T>() + row;
        for (std::int64_t d = 0; d < hd; ++d) dqv[d] = T(dq_row[std::size_t(d)]);
      }

  T* dkp = dk.data<T>();
  T* dvp = dv.data<T>();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t j = 0; j < Sk; ++j)
      for (std::int64_t kvh = 0; kvh < nKV; ++kvh)
        for (std::int64_t d = 0; d < hd; ++d) {
          T& dk_el = dkp[kv_index(b, j, kvh) + d];
          T& dv_el = dvp[kv_index(b, j, kvh) + d];
          dk_el = T(double(dk_el) + dk_acc[acc_index(b, j, kvh) + std::size_t(d)]);
          dv_el = T(double(dv_el) + dv_acc[acc_index(b, j, kvh) + std::size_t(d)]);
        }
}

}  // namespace flas::scalar_backward_detail
