// Attention with GQA, Gemma's soft-cap and the three FLAS/HF mask rules, as a blocked online softmax.
//
// Work unit: (batch b, kv head, block of queries). Its rows are (query, head-in-group) pairs, so the
// query heads sharing a kv head share every key/value block. Keys go by in blocks of 64: transpose the
// block, scores by a register-blocked kernel, scale → soft-cap → mask exactly as the reference, then an
// online-softmax update in f32 and the value product.
//
// Skipping keys: a query visits only keys that can carry weight. Under hf_min an invisible key weighs
// exactly 0 once the row has one visible key (finfo.min − max underflows), so causal and window
// ranges are exact. Under the −1e4 rules a masked key weighs ≤ e^(2·cap − 1e4) relative to a visible
// one, negligible only when the soft-cap bounds the scores; without a cap, or in a row with no
// visible key (every key then shares the mask and really does count), all keys are visited.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_tile.hpp"
#include "flas/backends/cpu.hpp"
#include "op_checks.hpp"

namespace flas {

using namespace cpu_detail;

namespace {

// Key-range bookkeeping for one call: per batch row, a prefix count of real keys.
class KeyRanges {
 public:
  KeyRanges(const nn::AttentionParams& p, std::int64_t B, std::int64_t cap, std::int64_t Sk)
      : p_(p), Sk_(Sk), valid_prefix_(std::size_t(B * (Sk + 1)), 0) {
    for (std::int64_t b = 0; b < B; ++b) {
      std::int32_t* pre = valid_prefix_.data() + b * (Sk + 1);
      for (std::int64_t j = 0; j < Sk; ++j) pre[j + 1] = pre[j] + (!p.key_valid || p.key_valid[b * cap + j] ? 1 : 0);
    }
    const bool capped = p.softcap > 0 && 2.0f * p.softcap < -nn::flas_mask_value - 100.0f;
    skip_masked_ = p.rule == nn::MaskRule::hf_min || capped;
  }

  // Keys [lo, hi) that query index qi (in key coordinates) must visit.
  std::pair<std::int64_t, std::int64_t> visit(std::int64_t b, std::int64_t qi) const {
    if (!skip_masked_) return {0, Sk_};
    const std::int64_t hi = p_.causal ? std::min(Sk_, qi + 1) : Sk_;
    const bool windowed = p_.rule == nn::MaskRule::hf_min && p_.causal && p_.window > 0;
    const std::int64_t lo = windowed ? std::max<std::int64_t>(0, qi - p_.window + 1) : 0;
    const std::int32_t* pre = valid_prefix_.data() + b * (Sk_ + 1);
    if (hi <= lo || pre[hi] == pre[lo]) return {0, Sk_};  // no visible key: every key counts
    // Start at the first visible key. Skipping invisible leading keys is exact, and it gives a row's
    // keys the same 64-key blocks (so the same rounding) wherever they sit in the cache: after left
    // padding, or in a continuous batch where a row joined after others (flas serve).
    const std::int64_t first = std::int64_t(std::upper_bound(pre + lo, pre + hi + 1, pre[lo]) - pre) - 1;
    return {first, hi};
  }

 private:
  const nn::AttentionParams& p_;
  std::int64_t Sk_;
  std::vector<std::int32_t> valid_prefix_;
  bool skip_masked_ = false;
};

// Query rows per work unit (queries × heads in the group): each key block is transposed once per unit,
// so more rows amortise it better: at S = 1024 (2B sizes) 128 rows run 1.3x faster than 32.
constexpr std::int64_t kRowsPerUnit = 128;

std::int64_t queries_per_unit(std::int64_t group, std::int64_t Sq) {
  return std::clamp<std::int64_t>(kRowsPerUnit / std::max<std::int64_t>(group, 1), 1, std::max<std::int64_t>(Sq, 1));
}

}  // namespace

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& out,
                           const nn::AttentionParams& p) {
  expect_f32(q, "attention", "q");
  expect_f32(k, "attention", "k");
  expect_f32(v, "attention", "v");
  expect_f32(out, "attention", "out");
  FLAS_CHECK(q.rank() == 4 && k.rank() == 4, "attention: q ", q.shape(), " and k ", k.shape(),
             " must be [B, S, heads, head_dim]");
  const std::int64_t B = q.dim(0), Sq = q.dim(1), nH = q.dim(2), hd = q.dim(3);
  const std::int64_t cap = k.dim(1), nKV = k.dim(2), Sk = p.kv_len < 0 ? cap : p.kv_len;
  // Causal attention needs a key per query; cross-attention (not causal) may have fewer keys.
  FLAS_CHECK(nKV > 0 && nH % nKV == 0 && k.dim(0) == B && k.dim(3) == hd && v.shape() == k.shape() &&
                 Sk <= cap && (Sk >= Sq || !p.causal),
             "attention: q ", q.shape(), ", k ", k.shape(), ", v ", v.shape(), ", kv_len ", Sk, " do not fit");
  FLAS_CHECK(out.numel() == q.numel(), "attention: out ", out.shape(), " does not match q ", q.shape());
  if (q.numel() == 0) return;
  FLAS_CHECK(Sk > 0, "attention: no keys (kv_len 0) for ", Sq, " queries");

  const std::int64_t group = nH / nKV, past = p.causal ? Sk - Sq : 0;  // cross-attention: no past
  const std::int64_t per_unit = queries_per_unit(group, Sq), qblocks = (Sq + per_unit - 1) / per_unit;
  const std::int64_t units = B * nKV * qblocks;
  const KeyRanges ranges(p, B, cap, Sk);

  std::vector<float> scratch;
  float* o = out.data<float>();
  if (overlaps(out, q) || overlaps(out, k) || overlaps(out, v)) {
    scratch.resize(std::size_t(out.numel()));
    o = scratch.data();
  }
  const AttentionInputs in{q.data<float>(), k.data<float>(), v.data<float>(), o, Sq, nH, hd, cap, nKV, p};

#pragma omp parallel if (units > 1 && q.numel() * Sk >= (1 << 14))
  {
    AttentionTile tile(in, per_unit * group);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t u = 0; u < units; ++u) {
      const std::int64_t b = u / (nKV * qblocks), kvh = (u / qblocks) % nKV, qb = u % qblocks;
      const std::int64_t i0 = qb * per_unit, i1 = std::min(Sq, i0 + per_unit);
      std::int64_t lo = Sk, hi = 0;
      for (std::int64_t i = i0; i < i1; ++i) {
        const auto [l, h] = ranges.visit(b, past + i);
        lo = std::min(lo, l);
        hi = std::max(hi, h);
      }
      tile.run(b, kvh, i0, i1, past, lo, hi);
    }
  }
  if (!scratch.empty()) std::copy(scratch.begin(), scratch.end(), out.data<float>());
}

}  // namespace flas
