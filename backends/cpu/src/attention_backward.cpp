// BackwardOps<CpuBackend>::attention_backward — the VJP of CpuBackend::attention with the scalar
// backend's semantics (scalar_attention_backward.hpp): probabilities recomputed from q and k (scale →
// soft-cap → mask rule → softmax, per element as the forward does) and D = Σ_j p_j dP_j recomputed
// rather than read as dout·out; `out` is not read.
//
// Work unit: (batch row, kv head). Its thread owns that head's dk/dv rows, sums them over the unit in
// f32 buffers and adds them in once, so no write races. The unit's rows — (query, head in group) pairs,
// as in the forward — go by in blocks of 64 against keys in blocks of 64, through the forward's
// register-blocked kernels (simd_block.hpp):
//   pass 1, per key block: S = Q·Kᵀ and dP = dO·Vᵀ; S scaled, capped (keeping ∂s/∂raw) and masked;
//           then per row the softmax over the whole key range and D = Σ P·dP;
//   pass 2, per key block: dS = P (dP − D) ∂s/∂raw · scale; dQ += dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO.
// The row block's S, dP and slopes ([64 rows × keys]) stay in per-thread buffers between the passes.
#include <algorithm>
#include <initializer_list>
#include <limits>
#include <vector>

#include "flas/backends/cpu_backward.hpp"
#include "op_checks.hpp"
#include "simd_block.hpp"
#include "vec_math.hpp"

namespace flas {

using namespace cpu_detail;

namespace {

// Rows per block: at most kKeyBlock, because the key-side products read the block's transposed
// dS and P as value-kernel rows of kKeyBlock entries.
constexpr std::int64_t kBlockRows = kKeyBlock;
constexpr std::int64_t kBlockSize = kBlockRows * kKeyBlock;

// The call's operands, checked; the layouts are the forward's: q, dout, dq [B, Sq, nH, hd] and k, v,
// dk, dv [B, cap, nKV, hd] of which keys [0, Sk) are in use.
struct AttentionGrads {
  const float *q, *k, *v, *dout;
  float *dq, *dk, *dv;
  std::int64_t B, Sq, nH, hd, cap, nKV, Sk, past;
  const nn::AttentionParams& p;
};

AttentionGrads attention_grads(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                               const Tensor& dout, const nn::AttentionParams& p, Tensor& dq, Tensor& dk, Tensor& dv) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&q, &k, &v, &dout, &dq, &dk, &dv})
    expect_f32(*t, "attention_backward", "one of q, k, v, dout, dq, dk, dv");
  const Shape &qs = q.shape(), &ks = k.shape();
  FLAS_CHECK(qs.rank() == 4 && ks.rank() == 4 && ks[0] == qs[0] && ks[3] == qs[3] && ks[2] > 0 && qs[2] % ks[2] == 0,
             "attention_backward: q ", qs, " and k ", ks, " are not [B, S, heads, hd] with kv heads dividing heads");
  FLAS_CHECK(v.shape() == ks && dk.shape() == ks && dv.shape() == ks && out.shape() == qs && dout.shape() == qs &&
                 dq.shape() == qs,
             "attention_backward: v, dk, dv ", v.shape(), ", ", dk.shape(), ", ", dv.shape(), " must be k's ", ks,
             " and out, dout, dq ", out.shape(), ", ", dout.shape(), ", ", dq.shape(), " q's ", qs);
  const std::int64_t Sk = p.kv_len < 0 ? ks[1] : p.kv_len;
  FLAS_CHECK(Sk > 0 && Sk <= ks[1] && (Sk >= qs[1] || !p.causal), "attention_backward: kv_len ", Sk, " does not fit ",
             ks[1], " cached keys and ", qs[1], p.causal ? " causal" : "", " queries");
  return {q.data<float>(), k.data<float>(), v.data<float>(), dout.data<float>(), dq.data<float>(),
          dk.data<float>(), dv.data<float>(), qs[0], qs[1], qs[2], qs[3], ks[1], ks[2], Sk,
          p.causal ? Sk - qs[1] : 0, p};
}

// Keys [lo, hi) that can carry weight for the query at key index qi; outside them a key's probability
// underflows to exactly 0, as the forward relies on (attention.cpp): under hf_min once the row has a
// visible key, under the −1e4 rules only when a soft-cap bounds the scores. A row with no visible key
// (every key then shares the mask) visits all keys. valid: the batch row's key_valid, or nullptr.
std::pair<std::int64_t, std::int64_t> live_keys(const nn::AttentionParams& p, const std::uint8_t* valid,
                                                std::int64_t Sk, std::int64_t qi) {
  const bool hf = p.rule == nn::MaskRule::hf_min;
  if (!hf && !(p.softcap > 0 && 2.0f * p.softcap < -nn::flas_mask_value - 100.0f)) return {0, Sk};
  const std::int64_t hi = p.causal ? std::min(Sk, qi + 1) : Sk;
  const std::int64_t lo = hf && p.causal && p.window > 0 ? std::max<std::int64_t>(0, qi - p.window + 1) : 0;
  for (std::int64_t j = lo; j < hi; ++j)
    if (!valid || valid[j]) return {lo, hi};
  return {0, Sk};
}

// dst[c * ld_dst + r] = src[r * ld_src + c] for r < rows, c < cols, in 16-column strips so that the
// lines being written stay in L1 (a key block's 256 × 64 transpose does not fit it).
void transpose(const float* src, std::int64_t ld_src, std::int64_t rows, std::int64_t cols, float* dst,
               std::int64_t ld_dst) {
  for (std::int64_t c0 = 0; c0 < cols; c0 += 16)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = c0; c < std::min(cols, c0 + 16); ++c) dst[c * ld_dst + r] = src[r * ld_src + c];
}

class BackwardTile {
 public:
  explicit BackwardTile(const AttentionGrads& g)
      : g_(g),
        hdp_((g.hd + 15) / 16 * 16),
        Q_(std::size_t(kBlockRows * hdp_), 0.0f),
        dO_(Q_.size(), 0.0f),
        dQ_(Q_.size(), 0.0f),
        Kt_(std::size_t(g.hd * kKeyBlock), 0.0f),
        Kpad_(std::size_t(kKeyBlock * hdp_), 0.0f),
        T_(std::size_t(kBlockSize), 0.0f),
        S_(std::size_t((g.Sk + kKeyBlock - 1) / kKeyBlock * kBlockSize)),
        dP_(S_.size()),
        slope_(S_.size()),
        dK_(std::size_t(g.Sk * hdp_)),
        dV_(dK_.size()),
        qi_(std::size_t(kBlockRows)),
        D_(std::size_t(kBlockRows)) {}

  // The whole unit: every row block of kv head kvh in batch row b, then dk/dv += the unit's sums.
  void run(std::int64_t b, std::int64_t kvh) {
    std::fill(dK_.begin(), dK_.end(), 0.0f);
    std::fill(dV_.begin(), dV_.end(), 0.0f);
    const std::int64_t flat = g_.Sq * (g_.nH / g_.nKV), hd = g_.hd;
    std::int64_t lo_all = g_.Sk, hi_all = 0;
    for (std::int64_t f0 = 0; f0 < flat; f0 += kBlockRows) {
      const auto [lo, hi] = row_block(b, kvh, f0, std::min(kBlockRows, flat - f0));
      lo_all = std::min(lo_all, lo);
      hi_all = std::max(hi_all, hi);
    }
    for (std::int64_t j = lo_all; j < hi_all; ++j) {
      const std::int64_t at = ((b * g_.cap + j) * g_.nKV + kvh) * hd;
      const float* dk_sum = dK_.data() + j * hdp_;
      const float* dv_sum = dV_.data() + j * hdp_;
#pragma omp simd
      for (std::int64_t d = 0; d < hd; ++d) {
        g_.dk[at + d] += dk_sum[d];
        g_.dv[at + d] += dv_sum[d];
      }
    }
  }

 private:
  // Rows [f0, f0 + rows) of the unit (row f = query f / group, head f % group of the group); returns
  // the key range it visited.
  std::pair<std::int64_t, std::int64_t> row_block(std::int64_t b, std::int64_t kvh, std::int64_t f0,
                                                  std::int64_t rows) {
    const std::int64_t group = g_.nH / g_.nKV, hd = g_.hd;
    const std::uint8_t* valid = g_.p.key_valid ? g_.p.key_valid + b * g_.cap : nullptr;
    std::int64_t lo = g_.Sk, hi = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = (f0 + r) / group, h = kvh * group + (f0 + r) % group;
      const std::int64_t at = ((b * g_.Sq + i) * g_.nH + h) * hd;
      std::copy_n(g_.q + at, hd, Q_.data() + r * hdp_);
      std::copy_n(g_.dout + at, hd, dO_.data() + r * hdp_);
      qi_[std::size_t(r)] = g_.past + i;
      const auto [l, u] = live_keys(g_.p, valid, g_.Sk, g_.past + i);
      lo = std::min(lo, l);
      hi = std::max(hi, u);
    }
    const std::int64_t blocks = (hi - lo + kKeyBlock - 1) / kKeyBlock, ldkv = g_.nKV * hd;
    auto key_row = [&](const float* base, std::int64_t j) { return base + ((b * g_.cap + j) * g_.nKV + kvh) * hd; };

    for (std::int64_t bb = 0; bb < blocks; ++bb) {  // pass 1: scores, dP, slopes
      const std::int64_t j0 = lo + bb * kKeyBlock, nb = std::min(kKeyBlock, hi - j0);
      float* S = S_.data() + bb * kBlockSize;
      transpose(key_row(g_.k, j0), ldkv, nb, hd, Kt_.data(), kKeyBlock);
      scores(Q_.data(), hdp_, rows, Kt_.data(), hd, S);
      transpose(key_row(g_.v, j0), ldkv, nb, hd, Kt_.data(), kKeyBlock);
      scores(dO_.data(), hdp_, rows, Kt_.data(), hd, dP_.data() + bb * kBlockSize);
      for (std::int64_t r = 0; r < rows; ++r)
        score_row(S + r * kKeyBlock, slope_.data() + bb * kBlockSize + r * kKeyBlock, nb, qi_[std::size_t(r)], j0,
                  valid ? valid + j0 : nullptr);
    }
    for (std::int64_t r = 0; r < rows; ++r) softmax_row(r, blocks);

    std::fill_n(dQ_.data(), rows * hdp_, 0.0f);
    const float scale = g_.p.scale;
    for (std::int64_t bb = 0; bb < blocks; ++bb) {  // pass 2: dS, then the three products
      const std::int64_t j0 = lo + bb * kKeyBlock, nb = std::min(kKeyBlock, hi - j0);
      const float* P = S_.data() + bb * kBlockSize;
      const float* slope = slope_.data() + bb * kBlockSize;
      float* dS = dP_.data() + bb * kBlockSize;
      for (std::int64_t r = 0; r < rows; ++r) {
        const float D = D_[std::size_t(r)];
#pragma omp simd
        for (std::int64_t jj = r * kKeyBlock; jj < (r + 1) * kKeyBlock; ++jj)
          dS[jj] = P[jj] * (dS[jj] - D) * slope[jj] * scale;
      }
      const float* K = key_row(g_.k, j0);
      std::int64_t ldk = ldkv;
      if (hd != hdp_) {  // the value kernel reads hdp columns: a zero-padded copy of the keys
        for (std::int64_t jj = 0; jj < nb; ++jj) std::copy_n(K + jj * ldkv, hd, Kpad_.data() + jj * hdp_);
        K = Kpad_.data();
        ldk = hdp_;
      }
      values(dS, rows, K, ldk, hdp_, nb, dQ_.data());
      transpose(dS, kKeyBlock, rows, nb, T_.data(), kKeyBlock);
      values(T_.data(), nb, Q_.data(), hdp_, hdp_, rows, dK_.data() + j0 * hdp_);
      transpose(P, kKeyBlock, rows, nb, T_.data(), kKeyBlock);
      values(T_.data(), nb, dO_.data(), hdp_, hdp_, rows, dV_.data() + j0 * hdp_);
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = (f0 + r) / group, h = kvh * group + (f0 + r) % group;
      std::copy_n(dQ_.data() + r * hdp_, hd, g_.dq + ((b * g_.Sq + i) * g_.nH + h) * hd);
    }
    return {lo, hi};
  }

  // Scale → soft-cap → mask for one row's scores of keys [j0, j0 + nb), as the forward, with ∂s/∂raw
  // in slope: 1 − tanh² under a cap, 0 where a rule replaces the score by a constant. Columns past nb
  // get s = −inf (probability 0) and slope 0.
  void score_row(float* s, float* slope, std::int64_t nb, std::int64_t qi, std::int64_t j0,
                 const std::uint8_t* valid) const {
    const nn::AttentionParams& p = g_.p;
    const float scale = p.scale, cap = p.softcap;
    if (cap > 0) {
#pragma omp simd
      for (std::int64_t jj = 0; jj < nb; ++jj) {
        const float t = fast_tanh(s[jj] * scale / cap);
        s[jj] = cap * t;
        slope[jj] = 1.0f - t * t;
      }
    } else {
#pragma omp simd
      for (std::int64_t jj = 0; jj < nb; ++jj) s[jj] *= scale, slope[jj] = 1.0f;
    }
    const bool causal = p.causal;
    const std::int64_t window = causal ? p.window : 0;  // the window only limits causal attention
    for (std::int64_t jj = 0; jj < nb; ++jj) {
      const bool pad = valid && !valid[jj], future = causal && j0 + jj > qi;
      switch (p.rule) {
        case nn::MaskRule::hf_min:
          if (pad || future || (window > 0 && qi - (j0 + jj) >= window)) s[jj] = nn::hf_mask_value, slope[jj] = 0;
          break;
        case nn::MaskRule::flas_additive:
          s[jj] += (future ? nn::flas_mask_value : 0.0f) + (pad ? nn::flas_mask_value : 0.0f);
          break;
        case nn::MaskRule::replace_neg1e4:
          if (pad || future) s[jj] = nn::flas_mask_value, slope[jj] = 0;
          break;
      }
    }
    for (std::int64_t jj = nb; jj < kKeyBlock; ++jj) s[jj] = -std::numeric_limits<float>::infinity(), slope[jj] = 0;
  }

  // Row r's scores over all its blocks become probabilities; D_r = Σ P·dP.
  void softmax_row(std::int64_t r, std::int64_t blocks) {
    float mx = -std::numeric_limits<float>::infinity();
    for (std::int64_t bb = 0; bb < blocks; ++bb) {
      const float* s = S_.data() + bb * kBlockSize + r * kKeyBlock;
#pragma omp simd reduction(max : mx)
      for (std::int64_t jj = 0; jj < kKeyBlock; ++jj) mx = s[jj] > mx ? s[jj] : mx;  // vectorises, std::max not
    }
    float z = 0;
    for (std::int64_t bb = 0; bb < blocks; ++bb) {
      float* s = S_.data() + bb * kBlockSize + r * kKeyBlock;
#pragma omp simd reduction(+ : z)
      for (std::int64_t jj = 0; jj < kKeyBlock; ++jj) z += (s[jj] = fast_exp(s[jj] - mx));
    }
    const float inv = 1.0f / z;
    float D = 0;
    for (std::int64_t bb = 0; bb < blocks; ++bb) {
      float* s = S_.data() + bb * kBlockSize + r * kKeyBlock;
      const float* dp = dP_.data() + bb * kBlockSize + r * kKeyBlock;
#pragma omp simd reduction(+ : D)
      for (std::int64_t jj = 0; jj < kKeyBlock; ++jj) D += (s[jj] *= inv) * dp[jj];
    }
    D_[std::size_t(r)] = D;
  }

  const AttentionGrads& g_;
  std::int64_t hdp_;
  std::vector<float> Q_, dO_, dQ_, Kt_, Kpad_, T_, S_, dP_, slope_, dK_, dV_;
  std::vector<std::int64_t> qi_;
  std::vector<float> D_;
};

}  // namespace

void BackwardOps<CpuBackend>::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                                 const Tensor& dout, const nn::AttentionParams& p, Tensor& dq,
                                                 Tensor& dk, Tensor& dv) {
  const AttentionGrads g = attention_grads(q, k, v, out, dout, p, dq, dk, dv);
  const std::int64_t units = g.B * g.nKV;
  if (q.numel() == 0) return;
#pragma omp parallel if (units > 1 && q.numel() * g.Sk >= (1 << 14))
  {
    BackwardTile tile(g);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t u = 0; u < units; ++u) tile.run(u / g.nKV, u % g.nKV);
  }
}

}  // namespace flas
