#pragma once
// One attention work unit: the rows (query, head) of a block of queries that share a kv head, against
// a range of keys, with an online softmax in f32. Owns its buffers (one tile per thread, reused for
// every unit the thread runs). Scores are scaled, soft-capped and masked exactly as the reference does,
// element by element, so the −1e4 rules keep their f32 rounding (s − 1e4 is rounded like torch does).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "flas/core/attention_params.hpp"
#include "simd_block.hpp"
#include "vec_math.hpp"

namespace flas::cpu_detail {

struct AttentionInputs {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  std::int64_t Sq, nH, hd, cap, nKV;
  const nn::AttentionParams& p;
};

class AttentionTile {
 public:
  static constexpr std::int64_t kDirectMaxRows = 4;

  AttentionTile(const AttentionInputs& in, std::int64_t max_rows)
      : in_(in),
        hdp_((in.hd + 15) / 16 * 16),
        Q_(std::size_t(max_rows * in.hd)),
        O_(std::size_t(max_rows * hdp_)),
        S_(std::size_t(max_rows * kKeyBlock)),
        m_(std::size_t(max_rows)),
        l_(std::size_t(max_rows)),
        qi_(std::size_t(max_rows)),
        Kt_(std::size_t(in.hd * kKeyBlock), 0.0f),
        V_(std::size_t(kKeyBlock * hdp_), 0.0f) {}

  // Queries [i0, i1) of batch row b, the query heads of kv head kvh, against keys [lo, hi).
  void run(std::int64_t b, std::int64_t kvh, std::int64_t i0, std::int64_t i1, std::int64_t past,
           std::int64_t lo, std::int64_t hi) {
    const std::int64_t group = in_.nH / in_.nKV, rows = (i1 - i0) * group, hd = in_.hd;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = i0 + r / group, h = kvh * group + r % group;
      std::copy_n(in_.q + ((b * in_.Sq + i) * in_.nH + h) * hd, hd, Q_.data() + r * hd);
      qi_[std::size_t(r)] = past + i;
    }
    std::fill_n(O_.data(), rows * hdp_, 0.0f);
    std::fill_n(m_.data(), rows, -std::numeric_limits<float>::infinity());
    std::fill_n(l_.data(), rows, 0.0f);

    // Few rows (decode) cannot amortise transposing each key block: take dot products on the cache.
    // With hd a multiple of 16 the values are read in place too.
    const bool direct = rows <= kDirectMaxRows && hd % 16 == 0;
    const std::int64_t ldkv = in_.nKV * hd;
    for (std::int64_t j0 = lo; j0 < hi; j0 += kKeyBlock) {
      const std::int64_t nb = std::min(kKeyBlock, hi - j0);
      const float* kblock = in_.k + ((b * in_.cap + j0) * in_.nKV + kvh) * hd;
      const float* vblock = in_.v + ((b * in_.cap + j0) * in_.nKV + kvh) * hd;
      if (direct) {
        scores_direct(Q_.data(), hd, rows, kblock, ldkv, nb, hd, S_.data());
      } else {
        transpose_keys(kblock, ldkv, nb);
        scores(Q_.data(), hd, rows, Kt_.data(), hd, S_.data());
      }
      for (std::int64_t r = 0; r < rows; ++r) softmax_update(r, b, j0, nb);
      if (hd == hdp_) {
        values(S_.data(), rows, vblock, ldkv, hdp_, nb, O_.data());
      } else {
        copy_values(vblock, ldkv, nb);
        values(S_.data(), rows, V_.data(), hdp_, hdp_, nb, O_.data());
      }
    }

    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = i0 + r / group, h = kvh * group + r % group;
      float* o = in_.out + ((b * in_.Sq + i) * in_.nH + h) * hd;
      const float* acc = O_.data() + r * hdp_;
      const float inv = 1.0f / l_[std::size_t(r)];
      for (std::int64_t d = 0; d < hd; ++d) o[d] = acc[d] * inv;
    }
  }

 private:
  // Keys of the block transposed into Kt [hd][64] (columns past nb keep stale, finite values whose
  // scores are discarded).
  void transpose_keys(const float* kblock, std::int64_t ldk, std::int64_t nb) {
    for (std::int64_t jj = 0; jj < nb; ++jj) {
      const float* kr = kblock + jj * ldk;
      for (std::int64_t d = 0; d < in_.hd; ++d) Kt_[std::size_t(d * kKeyBlock + jj)] = kr[d];
    }
  }
  // Values into V [64][hdp] when hd is not a multiple of 16 (the pad columns stay 0).
  void copy_values(const float* vblock, std::int64_t ldv, std::int64_t nb) {
    for (std::int64_t jj = 0; jj < nb; ++jj) std::copy_n(vblock + jj * ldv, in_.hd, V_.data() + jj * hdp_);
  }

  // Scale → cap → mask for row r's scores of keys [j0, j0 + nb), then the online-softmax step: the
  // row's scores become probabilities (relative to the running max) for the value product.
  void softmax_update(std::int64_t r, std::int64_t b, std::int64_t j0, std::int64_t nb) {
    const nn::AttentionParams& p = in_.p;
    float* s = S_.data() + r * kKeyBlock;
    const float scale = p.scale, cap = p.softcap;
#pragma omp simd
    for (std::int64_t jj = 0; jj < nb; ++jj) s[jj] *= scale;
    if (cap > 0) {
#pragma omp simd
      for (std::int64_t jj = 0; jj < nb; ++jj) s[jj] = cap * fast_tanh(s[jj] / cap);
    }
    apply_mask(s, nb, qi_[std::size_t(r)], j0, p.key_valid ? p.key_valid + b * in_.cap + j0 : nullptr);
    for (std::int64_t jj = nb; jj < kKeyBlock; ++jj) s[jj] = -std::numeric_limits<float>::infinity();

    float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
    for (std::int64_t jj = 0; jj < kKeyBlock; ++jj) mx = std::max(mx, s[jj]);
    float& m = m_[std::size_t(r)];
    const float m_new = std::max(m, mx);
    const float alpha = fast_exp(m - m_new);  // 0 on the first block (m = −inf)
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t jj = 0; jj < kKeyBlock; ++jj) {
      s[jj] = fast_exp(s[jj] - m_new);
      sum += s[jj];
    }
    l_[std::size_t(r)] = l_[std::size_t(r)] * alpha + sum;
    m = m_new;
    if (alpha != 1.0f) {
      float* o = O_.data() + r * hdp_;
#pragma omp simd
      for (std::int64_t d = 0; d < hdp_; ++d) o[d] *= alpha;
    }
  }

  // The reference's three rules, per element; `valid` is key_valid from key j0 (nullptr: all real).
  // One loop per rule, so each vectorises without a switch inside.
  void apply_mask(float* s, std::int64_t nb, std::int64_t qi, std::int64_t j0, const std::uint8_t* valid) const {
    const nn::AttentionParams& p = in_.p;
    const bool causal = p.causal, has_valid = valid != nullptr;
    const std::int64_t window = causal ? p.window : 0;  // the sliding window only limits causal attention
    auto pad = [&](std::int64_t jj) { return has_valid && !valid[jj]; };
    auto future = [&](std::int64_t jj) { return causal && j0 + jj > qi; };
    switch (p.rule) {
      case nn::MaskRule::hf_min:
        for (std::int64_t jj = 0; jj < nb; ++jj)
          if (pad(jj) || future(jj) || (window > 0 && qi - (j0 + jj) >= window)) s[jj] = nn::hf_mask_value;
        break;
      case nn::MaskRule::flas_additive:
        for (std::int64_t jj = 0; jj < nb; ++jj)
          s[jj] += (future(jj) ? nn::flas_mask_value : 0.0f) + (pad(jj) ? nn::flas_mask_value : 0.0f);
        break;
      case nn::MaskRule::replace_neg1e4:
        for (std::int64_t jj = 0; jj < nb; ++jj)
          if (pad(jj) || future(jj)) s[jj] = nn::flas_mask_value;
        break;
    }
  }

  const AttentionInputs& in_;
  std::int64_t hdp_;
  std::vector<float> Q_, O_, S_, m_, l_;
  std::vector<std::int64_t> qi_;
  std::vector<float> Kt_, V_;
};

}  // namespace flas::cpu_detail
