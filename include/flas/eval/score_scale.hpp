#pragma once
// Offline proxies on the judge's 0..2 scale. Each raw proxy value is mapped to 0, 1 or 2 by two
// thresholds derived from REFERENCE samples: the same proxy measured on the unsteered model's own
// answers to the same instructions (for the concept proxy: those answers scored by the concept's own
// classifier, so one calibration per concept). Q(p) is the p-quantile of the reference values, linearly
// interpolated between order statistics (numpy's default). "At or better" is inclusive.
//
// Rules (threshold = scale * Q(p) + offset):
//   concept      classifier probability, higher is better.
//                1 at or above Q(0.9): more conceptual than 9 in 10 unsteered answers;
//                2 at or above max(Q(0.9), 0.5): the classifier also calls the concept more likely present
//                than absent (its classes are balanced, so 0.5 is its decision boundary).
//   fluency      the minimum of two scores (a reply needs both to be fluent, and a looping reply can have
//                a low NLL):
//     NLL        mean negative log-likelihood per token under the unsteered model, lower is better.
//                2 at or below Q(0.9); 1 at or below 1.5 * Q(0.9); 0 above. Lenient on purpose: the NLL
//                also rises for fluent text about an unexpected concept, which steering is meant to add;
//                1.5 x NLL is perplexity to the power 1.5.
//     repetition repeated 4-gram fraction (repetition.hpp), lower is better.
//                2 at or below Q(0.9) + 0.05; 1 at or below Q(0.9) + 0.25; 0 above. Additive margins
//                because unsteered answers mostly repeat nothing (Q = 0), where a ratio says nothing.
//   instruction  PMI = NLL(reply | another instruction) - NLL(reply | its instruction), per token, higher
//                is better (how much its own instruction explains the reply).
//                2 at or above Q(0.1): as instruction-bound as 9 in 10 unsteered answers; 1 at or above
//                0.5 * Q(0.1); 0 below. The reference Q(0.1) must be positive (else the unsteered answers
//                do not depend on their instructions and the proxy is meaningless: an error).
// The per-sample score is the harmonic mean of the three 0..2 scores (0 if any is 0), as in AxBench.
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flas/core/error.hpp"

namespace flas::eval {

enum class Better { higher, lower };

// A threshold scale * Q(quantile) + offset over the reference values.
struct Threshold {
  double quantile = 0.5, scale = 1, offset = 0;
};

struct CalibrationRule {
  std::string proxy;  // names the proxy in messages
  Better better = Better::higher;
  Threshold full, partial;  // 2 at or better than full, 1 at or better than partial, else 0
  std::optional<double> full_bound;  // the full threshold is at least this strict (concept: 0.5)
};

// The p-quantile (0 <= p <= 1) of `values`, linearly interpolated between order statistics.
inline double quantile(std::vector<double> values, double p, const std::string& what = "quantile") {
  FLAS_CHECK(!values.empty(), what, ": no values");
  FLAS_CHECK(p >= 0 && p <= 1, what, ": quantile level ", p, " is not in [0, 1]");
  for (const double v : values) FLAS_CHECK(std::isfinite(v), what, ": value ", v, " is not finite");
  std::sort(values.begin(), values.end());
  const double position = p * double(values.size() - 1);
  const auto below = std::size_t(std::floor(position));
  const auto above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - double(below)) * (values[above] - values[below]);
}

struct Calibration {
  std::string proxy;
  Better better = Better::higher;
  double full = 0, partial = 0;

  static Calibration fit(std::span<const double> reference, const CalibrationRule& rule) {
    const std::string what = "calibration '" + rule.proxy + "'";
    const std::vector<double> values(reference.begin(), reference.end());
    auto threshold = [&](const Threshold& t) {
      const double q = quantile(values, t.quantile, what + " reference");
      FLAS_CHECK(t.scale == 1 || q > 0, what, ": the reference ", t.quantile, "-quantile is ", q,
                 "; a scaled threshold needs a positive reference value (do the unsteered answers measure right?)");
      return t.scale * q + t.offset;
    };
    Calibration c{rule.proxy, rule.better, threshold(rule.full), threshold(rule.partial)};
    const bool higher = rule.better == Better::higher;
    if (rule.full_bound) c.full = higher ? std::max(c.full, *rule.full_bound) : std::min(c.full, *rule.full_bound);
    c.full = higher ? std::max(c.full, c.partial) : std::min(c.full, c.partial);  // full is never the easier one
    return c;
  }

  int score(double raw) const {
    FLAS_CHECK(std::isfinite(raw), "calibration '", proxy, "': raw value ", raw, " is not finite");
    const bool higher = better == Better::higher;
    if (higher ? raw >= full : raw <= full) return 2;
    if (higher ? raw >= partial : raw <= partial) return 1;
    return 0;
  }
};

inline void to_json(nlohmann::json& j, const Calibration& c) {
  j = {{"proxy", c.proxy}, {"better", c.better == Better::higher ? "higher" : "lower"}, {"full", c.full},
       {"partial", c.partial}};
}

// The rules of the note at the top.
namespace calibration_rules {
inline CalibrationRule concept_probability() { return {"concept", Better::higher, {0.9}, {0.9}, 0.5}; }
inline CalibrationRule fluency_nll() { return {"fluency_nll", Better::lower, {0.9}, {0.9, 1.5}, std::nullopt}; }
inline CalibrationRule repetition() {
  return {"repetition", Better::lower, {0.9, 1, 0.05}, {0.9, 1, 0.25}, std::nullopt};
}
inline CalibrationRule instruction_pmi() {
  return {"instruction_pmi", Better::higher, {0.1}, {0.1, 0.5}, std::nullopt};
}
}  // namespace calibration_rules

// Harmonic mean of the three 0..2 scores; 0 if any is 0 (a reply that fails one criterion fails).
inline double harmonic_mean_score(double concept_score, double instruction_score, double fluency_score) {
  for (const double s : {concept_score, instruction_score, fluency_score})
    FLAS_CHECK(std::isfinite(s) && s >= 0 && s <= 2, "harmonic mean: score ", s, " is not in [0, 2]");
  if (concept_score == 0 || instruction_score == 0 || fluency_score == 0) return 0;
  return 3 / (1 / concept_score + 1 / instruction_score + 1 / fluency_score);
}

}  // namespace flas::eval
