#pragma once
// BackwardOps<KokkosBackend<E>>::attention_backward, in two kernels so that no two threads add into one
// element of dk or dv:
//  1. one team per (batch, query, head): the forward's scores recomputed (scale → soft-cap → mask rule,
//     the forward's f32 roundings), probabilities p_j and score cotangents draw_j = p_j (dP_j − D)·
//     ∂s_j/∂raw_j·scale into a [B, nH, Sq, Sk] buffer, and dq = Σ_j draw_j k_j;
//  2. one team per (batch, key, kv head): dk_j += Σ draw q and dv_j += Σ p dout over the queries and
//     the heads of the group. Only keys j < kv_len are touched.
// Per query row, with dP_j = dout·v_j and D = Σ_j p_j dP_j (the scalar oracle's derivation).
#include "flas/backends/kokkos/views.hpp"
#include "flas/backends/kokkos_backward.hpp"

namespace flas {

template <class E>
void BackwardOps<KokkosBackend<E>>::attention_backward(const tensor& q, const tensor& k, const tensor& v,
                                                       const tensor& out, const tensor& dout,
                                                       const nn::AttentionParams& p, tensor& dq, tensor& dk,
                                                       tensor& dv) {
  using namespace kokkos_detail;
  using Mem = typename E::memory_space;
  kokkos_ensure_initialized();
  expect_f32s<typename KokkosBackend<E>::space>("attention_backward", "one of q, k, v, dout, dq, dk, dv",
                                                {&q, &k, &v, &dout, &dq, &dk, &dv});
  FLAS_CHECK(q.rank() == 4 && k.rank() == 4, "attention_backward: q ", q.shape(), " and k ", k.shape(),
             " must be [B, S, heads, head_dim]");
  const std::int64_t B = q.dim(0), Sq = q.dim(1), nH = q.dim(2), hd = q.dim(3);
  const std::int64_t cap = k.dim(1), nKV = k.dim(2), Sk = p.kv_len < 0 ? cap : p.kv_len;
  FLAS_CHECK(nKV > 0 && Sk > 0 && nH % nKV == 0 && k.dim(0) == B && k.dim(3) == hd && v.shape() == k.shape() &&
                 Sk <= cap && (Sk >= Sq || !p.causal),
             "attention_backward: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(), ", kv_len ", Sk, " do not fit");
  FLAS_CHECK(out.shape() == q.shape() && dout.shape() == q.shape() && dq.shape() == q.shape() &&
                 dk.shape() == k.shape() && dv.shape() == v.shape(),
             "attention_backward: out ", out.shape(), ", dout ", dout.shape(), ", dq ", dq.shape(), ", dk ", dk.shape(),
             ", dv ", dv.shape(), " must match q ", q.shape(), " and k/v ", k.shape());
  if (q.numel() == 0) return;
  const std::int64_t group = nH / nKV, past = p.causal ? Sk - Sq : 0;
  const float scale_f = p.scale, softcap = p.softcap;
  const double scale = double(p.scale);
  const bool causal = p.causal;
  const std::int64_t window = p.window;
  const nn::MaskRule rule = p.rule;
  const float hf_min = nn::hf_mask_value, neg1e4 = nn::flas_mask_value;

  const KeyValidOn<E> valid_on(p.key_valid, B * cap);
  const std::uint8_t* valid = valid_on.data;
  const float* qp = q.template data<float>();
  const float* kp = k.template data<float>();
  const float* vp = v.template data<float>();
  const float* dop = dout.template data<float>();
  float* dqp = dq.template data<float>();
  float* dkp = dk.template data<float>();
  float* dvp = dv.template data<float>();
  // prob(b, h, i, j) and draw(b, h, i, j): a head's queries are contiguous for kernel 2.
  Kokkos::View<double*, Mem> prob(Kokkos::ViewAllocateWithoutInitializing("flas::attn_bw_prob"), B * nH * Sq * Sk);
  Kokkos::View<double*, Mem> draw(Kokkos::ViewAllocateWithoutInitializing("flas::attn_bw_draw"), B * nH * Sq * Sk);
  auto cell = [=] KOKKOS_FUNCTION(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t j) {
    return ((b * nH + h) * Sq + i) * Sk + j;
  };

  using team_t = typename Kokkos::TeamPolicy<E>::member_type;
  Kokkos::parallel_for(
      "flas::attention_bw_rows", Kokkos::TeamPolicy<E>(B * Sq * nH, Kokkos::AUTO), KOKKOS_LAMBDA(const team_t& team) {
        const std::int64_t r = team.league_rank(), h = r % nH, i = (r / nH) % Sq, b = r / (nH * Sq);
        const std::int64_t kvh = h / group, qi = past + i;
        const float* qv = qp + r * hd;
        const float* dov = dop + r * hd;
        // Scores into prob, ∂s/∂raw into draw (both overwritten below).
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, Sk), [&](std::int64_t j) {
          const float* kv = kp + ((b * cap + j) * nKV + kvh) * hd;
          double dot = 0;
          for (std::int64_t d = 0; d < hd; ++d) dot += double(qv[d]) * double(kv[d]);
          float sc = float(dot) * scale_f;
          double through = 1.0;
          if (softcap > 0) {
            const float t = kmath::tanh(sc / softcap);
            sc = softcap * t;
            through = 1.0 - double(t) * double(t);
          }
          const bool pad = valid && !valid[b * cap + j];
          const bool future = causal && j > qi;
          const bool outside = causal && window > 0 && qi - j >= window;
          if (rule == nn::MaskRule::hf_min) {
            if (pad || future || outside) sc = hf_min, through = 0.0;
          } else if (rule == nn::MaskRule::flas_additive) {
            sc += (future ? neg1e4 : 0.0f) + (pad ? neg1e4 : 0.0f);
          } else if (pad || future) {
            sc = neg1e4, through = 0.0;
          }
          prob(cell(b, h, i, j)) = double(sc);
          draw(cell(b, h, i, j)) = through;
        });
        team.team_barrier();
        double mx = 0, z = 0, D = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, Sk),
            [&](std::int64_t j, double& m) { m = prob(cell(b, h, i, j)) > m ? prob(cell(b, h, i, j)) : m; },
            Kokkos::Max<double>(mx));
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, Sk),
            [&](std::int64_t j, double& s) { s += kmath::exp(prob(cell(b, h, i, j)) - mx); }, z);
        team.team_barrier();
        // prob_j = exp(s_j − mx) / z; D = Σ_j prob_j dP_j (draw still holds the slopes).
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, Sk),
            [&](std::int64_t j, double& s) {
              const std::int64_t c = cell(b, h, i, j);
              const double pj = kmath::exp(prob(c) - mx) / z;
              const float* vv = vp + ((b * cap + j) * nKV + kvh) * hd;
              double dP = 0;
              for (std::int64_t d = 0; d < hd; ++d) dP += double(dov[d]) * double(vv[d]);
              prob(c) = pj;
              s += pj * dP;
            },
            D);
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, Sk), [&](std::int64_t j) {
          const std::int64_t c = cell(b, h, i, j);
          const float* vv = vp + ((b * cap + j) * nKV + kvh) * hd;
          double dP = 0;  // recomputed: cheaper than a third [B, nH, Sq, Sk] buffer
          for (std::int64_t d = 0; d < hd; ++d) dP += double(dov[d]) * double(vv[d]);
          draw(c) = prob(c) * (dP - D) * draw(c) * scale;
        });
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, hd), [&](std::int64_t d) {
          double acc = 0;
          for (std::int64_t j = 0; j < Sk; ++j) acc += draw(cell(b, h, i, j)) * double(kp[((b * cap + j) * nKV + kvh) * hd + d]);
          dqp[r * hd + d] = float(acc);
        });
      });

  Kokkos::parallel_for(
      "flas::attention_bw_keys", Kokkos::TeamPolicy<E>(B * Sk * nKV, Kokkos::AUTO), KOKKOS_LAMBDA(const team_t& team) {
        const std::int64_t r = team.league_rank(), kvh = r % nKV, j = (r / nKV) % Sk, b = r / (nKV * Sk);
        const std::int64_t base = ((b * cap + j) * nKV + kvh) * hd;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, hd), [&](std::int64_t d) {
          double gk = 0, gv = 0;
          for (std::int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
            for (std::int64_t i = 0; i < Sq; ++i) {
              const std::int64_t c = cell(b, h, i, j), row = ((b * Sq + i) * nH + h) * hd;
              gk += draw(c) * double(qp[row + d]);
              gv += prob(c) * double(dop[row + d]);
            }
          dkp[base + d] = float(double(dkp[base + d]) + gk);
          dvp[base + d] = float(double(dvp[base + d]) + gv);
        });
      });
}

}  // namespace flas
