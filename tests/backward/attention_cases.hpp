#pragma once
// Attention layouts shared by the backward tests (finite differences on the f64 oracle, the CPU backend
// against that oracle): the batch geometry, causal/window settings and a padding pattern per layout,
// and the parameters of one (layout, GQA group, rule, soft-cap) case.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "flas/core/shape.hpp"
#include "flas/core/attention_params.hpp"

namespace flas::backward_test {

struct Layout {
  const char* name;
  std::int64_t B, Sq, capacity, kv_len, hd;  // kv_len −1: the whole capacity
  bool causal;
  std::int64_t window;
  bool pads;
};

inline constexpr std::int64_t kQueryHeads = 4;

// Small enough for finite differences: causal self-attention, left and right padding (fully masked
// query rows included), decode with a sliding window and a cache larger than kv_len, non-causal
// cross-attention with Sq > Sk, and a non-causal square case.
inline constexpr Layout kSmallLayouts[] = {
    {"causal self-attention", 2, 5, 5, -1, 6, true, 0, false},
    {"causal, left and right padding", 2, 5, 5, -1, 6, true, 0, true},
    {"decode: window 3, kv_len 7 of 9, pads", 2, 3, 9, 7, 4, true, 3, true},
    {"prefill: window 2", 1, 6, 6, -1, 4, true, 2, false},
    {"cross: Sq 7 > Sk 4 of 6, pads", 2, 7, 6, 4, 5, false, 0, true},
    {"non-causal square (window ignored)", 1, 4, 4, -1, 3, false, 2, false},
};

// Even rows are left-padded (keys 0 and 1), odd rows right-padded (the last key in use): with causal
// masking the first queries of a left-padded row see no real key at all.
inline std::vector<std::uint8_t> key_validity(const Layout& l) {
  const std::int64_t used = l.kv_len < 0 ? l.capacity : l.kv_len;
  std::vector<std::uint8_t> valid(std::size_t(l.B * l.capacity), 1);
  for (std::int64_t b = 0; b < l.B; ++b) {
    std::uint8_t* row = valid.data() + b * l.capacity;
    if (b % 2 == 0) row[0] = row[1] = 0;
    else row[used - 1] = 0;
  }
  return valid;
}

// Whether some query sees only padding or future keys (under flas_additive its scores sit near −1e4).
inline bool has_fully_masked_query(const Layout& l, const std::vector<std::uint8_t>& valid) {
  const std::int64_t used = l.kv_len < 0 ? l.capacity : l.kv_len, past = l.causal ? used - l.Sq : 0;
  for (std::int64_t b = 0; b < l.B; ++b)
    for (std::int64_t i = 0; i < l.Sq; ++i) {
      bool seen = false;
      for (std::int64_t j = 0; j < used && !seen; ++j)
        seen = (!l.pads || valid[std::size_t(b * l.capacity + j)]) && (!l.causal || j <= past + i);
      if (!seen) return true;
    }
  return false;
}

inline const char* rule_name(nn::MaskRule r) {
  switch (r) {
    case nn::MaskRule::hf_min: return "hf_min";
    case nn::MaskRule::flas_additive: return "flas_additive";
    case nn::MaskRule::replace_neg1e4: return "replace_neg1e4";
  }
  return "?";
}

inline nn::AttentionParams attention_params(const Layout& l, nn::MaskRule rule, float softcap,
                                            const std::vector<std::uint8_t>& valid) {
  nn::AttentionParams p;
  p.scale = float(1.0 / std::sqrt(double(l.hd)));
  p.softcap = softcap;
  p.rule = rule;
  p.causal = l.causal;
  p.window = l.window;
  p.kv_len = l.kv_len;
  p.key_valid = l.pads ? valid.data() : nullptr;
  return p;
}

// One (layout, GQA group, rule, soft-cap) case: its shapes, key validity and parameters, and a label
// for the test's INFO.
struct AttentionCase {
  std::int64_t nKV;
  std::vector<std::uint8_t> valid;
  nn::AttentionParams p;
  Shape q_shape, kv_shape;
  std::string label;

  AttentionCase(const Layout& l, std::int64_t group, nn::MaskRule rule, float softcap)
      : nKV(kQueryHeads / group), valid(key_validity(l)), p(attention_params(l, rule, softcap, valid)),
        q_shape{l.B, l.Sq, kQueryHeads, l.hd}, kv_shape{l.B, l.capacity, nKV, l.hd},
        label(std::string(l.name) + ", group " + std::to_string(group) + ", " + rule_name(rule) + ", softcap " +
              std::to_string(softcap)) {}
  AttentionCase(const AttentionCase&) = delete;  // p points into valid
};

}  // namespace flas::backward_test
