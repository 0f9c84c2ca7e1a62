#pragma once
// KokkosBackend::attention: one team per (batch, query, head). The team scores every visible key into
// team scratch (soft-cap, then the mask rule, exactly as ScalarBackend), reduces the maximum and the
// softmax sum, and writes the weighted sum of values. q is read in full before out is written, so out
// may be q.
#include "flas/backends/kokkos.hpp"
#include "flas/backends/kokkos/views.hpp"

namespace flas {

template <class E>
void KokkosBackend<E>::attention(const tensor& q, const tensor& k, const tensor& v, tensor& out,
                                 const nn::AttentionParams& p) {
  using namespace kokkos_detail;
  kokkos_ensure_initialized();
  expect_f32(q, "attention", "q");
  expect_f32(k, "attention", "k");
  expect_f32(v, "attention", "v");
  expect_f32(out, "attention", "out");
  FLAS_CHECK(q.rank() == 4 && k.rank() == 4, "attention: q ", q.shape(), " and k ", k.shape(),
             " must be [B, S, heads, head_dim]");
  const std::int64_t B = q.dim(0), Sq = q.dim(1), nH = q.dim(2), hd = q.dim(3);
  const std::int64_t cap = k.dim(1), nKV = k.dim(2), Sk = p.kv_len < 0 ? cap : p.kv_len;
  FLAS_CHECK(nKV > 0 && nH % nKV == 0 && k.dim(0) == B && k.dim(3) == hd && v.shape() == k.shape() &&
                 Sk <= cap && (Sk >= Sq || !p.causal) && out.shape() == q.shape(),
             "attention: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(), ", out ", out.shape(), ", kv_len ",
             Sk, " do not fit");
  if (out.numel() == 0) return;
  const std::int64_t group = nH / nKV, past = p.causal ? Sk - Sq : 0;  // cross-attention: no past
  const float scale = p.scale, softcap = p.softcap;
  const bool causal = p.causal;
  const std::int64_t window = p.window;
  const nn::MaskRule rule = p.rule;
  const float hf_min = nn::hf_mask_value, neg1e4 = nn::flas_mask_value;

  const KeyValidOn<E> valid_on(p.key_valid, B * cap);
  const std::uint8_t* valid = valid_on.data;

  const float* qp = q.template data<float>();
  const float* kp = k.template data<float>();
  const float* vp = v.template data<float>();
  float* op = out.template data<float>();
  using policy_t = Kokkos::TeamPolicy<E>;
  using team_t = typename policy_t::member_type;
  using scores_t = Kokkos::View<float*, typename E::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  const std::size_t scratch_bytes = scores_t::shmem_size(std::size_t(Sk > 0 ? Sk : 1));
  const int level = scratch_bytes <= 16 * 1024 ? 0 : 1;  // long caches spill to level-1 scratch
  const policy_t policy = policy_t(B * Sq * nH, Kokkos::AUTO).set_scratch_size(level, Kokkos::PerTeam(scratch_bytes));

  Kokkos::parallel_for(
      "flas::attention", policy, KOKKOS_LAMBDA(const team_t& team) {
        const std::int64_t r = team.league_rank(), h = r % nH, i = (r / nH) % Sq, b = r / (nH * Sq);
        const std::int64_t kvh = h / group, qi = past + i;
        const float* qv = qp + r * hd;
        scores_t s(team.team_scratch(level), Sk > 0 ? Sk : 1);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, Sk), [&](std::int64_t j) {
          const float* kv = kp + ((b * cap + j) * nKV + kvh) * hd;
          float dot = 0;
          for (std::int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
          float sc = dot * scale;
          if (softcap > 0) sc = softcap * kmath::tanh(sc / softcap);
          const bool pad = valid && !valid[b * cap + j];
          const bool future = causal && j > qi;
          const bool outside = causal && window > 0 && qi - j >= window;
          if (rule == nn::MaskRule::hf_min) {
            if (pad || future || outside) sc = hf_min;
          } else if (rule == nn::MaskRule::flas_additive) {
            sc += (future ? neg1e4 : 0.0f) + (pad ? neg1e4 : 0.0f);
          } else if (pad || future) {
            sc = neg1e4;
          }
          s(j) = sc;
        });
        team.team_barrier();
        float mx = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, Sk), [&](std::int64_t j, float& m) { m = s(j) > m ? s(j) : m; },
            Kokkos::Max<float>(mx));
        team.team_barrier();
        float z = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, Sk),
            [&](std::int64_t j, float& acc) {
              const float e = kmath::exp(s(j) - mx);
              s(j) = e;
              acc += e;
            },
            z);
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, hd), [&](std::int64_t d) {
          float acc = 0;
          for (std::int64_t j = 0; j < Sk; ++j) acc += s(j) * vp[((b * cap + j) * nKV + kvh) * hd + d];
          op[r * hd + d] = acc / z;
        });
      });
}

}  // namespace flas
