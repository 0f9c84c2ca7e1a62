#pragma once
// AxBench-style steering-factor selection. Each concept's instructions are split in two halves: a
// SELECTION half on which every (method, concept) picks the factor with the highest mean score, and a
// REPORT half on which the chosen factor's scores are reported, so the choice never sees what it is
// judged on.
//
// The halves (as AxBench's evaluate.py with winrate_split_ratio = 0.5): take the concept's distinct
// instruction indices in increasing order (all methods together), n of them; the report half is the last
// round_half_even(n * report_fraction), the selection half the first n minus that (n = 10: 0-4 select,
// 5-9 report). Both halves must be non-empty.
// The choice: the factor with the largest mean score over the selection half's rows (all samples);
// means within tie_tolerance count as equal and the smaller factor wins (AxBench: numpy argmax over
// factors in increasing order keeps the first maximum).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "flas/core/error.hpp"

namespace flas::eval {

struct ScoredRow {
  std::string method, concept_text, split;  // split: the concept's "held_in" / "held_out"
  std::int64_t instruction_index = 0;
  double factor = 0;
  double score = 0;                       // the selection criterion: the per-sample harmonic mean, 0..2
  std::map<std::string, double> metrics;  // further per-sample values to report (concept, fluency, ...)
};

struct FactorSelectionOptions {
  double report_fraction = 0.5;
  double tie_tolerance = 1e-9;
};

struct InstructionHalves {
  std::vector<std::int64_t> selection, report;
};

struct FactorChoice {
  std::string method, concept_text, split;
  double factor = 0;
  double selection_mean = 0, report_mean = 0;
  std::size_t selection_samples = 0, report_samples = 0;
  std::map<std::string, double> report_metrics;  // mean of each metric on the report half at `factor`
};

// The halves of one concept's instruction indices (see the note at the top).
inline InstructionHalves split_instructions(std::set<std::int64_t> indices, double report_fraction,
                                            const std::string& concept_text) {
  FLAS_CHECK(report_fraction > 0 && report_fraction < 1, "factor selection: report_fraction ", report_fraction,
             " is not in (0, 1)");
  const double exact = double(indices.size()) * report_fraction;
  double report = std::floor(exact);
  if (exact - report > 0.5 || (exact - report == 0.5 && std::fmod(report, 2.0) != 0)) report += 1;  // half to even
  const std::size_t n_select = indices.size() - std::size_t(report);
  FLAS_CHECK(n_select >= 1 && report >= 1, "factor selection: concept '", concept_text, "' has ", indices.size(),
             " instruction(s); need at least 2 to choose on one half and report on the other");
  InstructionHalves h;
  for (const auto i : indices) (h.selection.size() < n_select ? h.selection : h.report).push_back(i);
  return h;
}

namespace detail {
inline void check_scored_rows(const std::vector<ScoredRow>& rows) {
  FLAS_CHECK(!rows.empty(), "factor selection: no scored rows");
  for (const auto& r : rows)
    FLAS_CHECK(std::isfinite(r.score) && std::isfinite(r.factor), "factor selection: method '", r.method,
               "', concept '", r.concept_text, "', instruction ", r.instruction_index, ", factor ", r.factor,
               ": score ", r.score, " or factor is not finite");
}

// Each concept's halves; also checks that a concept has one split.
inline std::map<std::string, InstructionHalves> halves_by_concept(const std::vector<ScoredRow>& rows,
                                                                  const FactorSelectionOptions& options) {
  std::map<std::string, std::set<std::int64_t>> indices;
  std::map<std::string, std::string> split;
  for (const auto& r : rows) {
    indices[r.concept_text].insert(r.instruction_index);
    const auto [it, fresh] = split.emplace(r.concept_text, r.split);
    FLAS_CHECK(fresh || it->second == r.split, "factor selection: concept '", r.concept_text, "' is in split '",
               it->second, "' and in split '", r.split, "'");
  }
  std::map<std::string, InstructionHalves> out;
  for (auto& [c, ids] : indices) out.emplace(c, split_instructions(std::move(ids), options.report_fraction, c));
  return out;
}

inline bool in(const std::vector<std::int64_t>& sorted, std::int64_t i) {
  return std::binary_search(sorted.begin(), sorted.end(), i);
}
}  // namespace detail

inline std::vector<FactorChoice> select_factors(const std::vector<ScoredRow>& rows,
                                                const FactorSelectionOptions& options = {}) {
  detail::check_scored_rows(rows);
  const auto halves = detail::halves_by_concept(rows, options);
  struct Sum {
    double total = 0;
    std::size_t n = 0;
  };
  // (method, concept) -> factor -> selection-half sum
  std::map<std::pair<std::string, std::string>, std::map<double, Sum>> selection;
  for (const auto& r : rows)
    if (detail::in(halves.at(r.concept_text).selection, r.instruction_index)) {
      auto& s = selection[{r.method, r.concept_text}][r.factor];
      s.total += r.score;
      s.n += 1;
    }
  std::vector<FactorChoice> choices;
  for (const auto& [key, by_factor] : selection) {
    FactorChoice c{key.first, key.second, "", 0, 0, 0, 0, 0, {}};
    bool first = true;
    for (const auto& [factor, s] : by_factor) {  // increasing factor: a tie keeps the smaller one
      const double mean = s.total / double(s.n);
      if (first || mean > c.selection_mean + options.tie_tolerance) {
        first = false;
        c.factor = factor;
        c.selection_mean = mean;
        c.selection_samples = s.n;
      }
    }
    std::map<std::string, Sum> metric_sums;
    double report_total = 0;
    for (const auto& r : rows) {
      if (r.method != c.method || r.concept_text != c.concept_text || r.factor != c.factor) continue;
      c.split = r.split;
      if (!detail::in(halves.at(r.concept_text).report, r.instruction_index)) continue;
      report_total += r.score;
      c.report_samples += 1;
      for (const auto& [name, v] : r.metrics) {
        metric_sums[name].total += v;
        metric_sums[name].n += 1;
      }
    }
    FLAS_CHECK(c.report_samples > 0, "factor selection: method '", c.method, "', concept '", c.concept_text,
               "': no rows on the report half at the chosen factor ", c.factor);
    c.report_mean = report_total / double(c.report_samples);
    for (const auto& [name, s] : metric_sums) {
      FLAS_CHECK(s.n == c.report_samples, "factor selection: method '", c.method, "', concept '", c.concept_text,
                 "': metric '", name, "' is on ", s.n, " of the ", c.report_samples, " report rows");
      c.report_metrics[name] = s.total / double(s.n);
    }
    choices.push_back(std::move(c));
  }
  for (const auto& [concept_text, h] : halves) {
    (void)h;
    bool any = false;
    for (const auto& c : choices) any = any || c.concept_text == concept_text;
    FLAS_CHECK(any, "factor selection: concept '", concept_text, "' has no rows on its selection half");
  }
  return choices;
}

// The report-half rows at each (method, concept)'s chosen factor: the samples a summary aggregates.
inline std::vector<ScoredRow> rows_at_chosen_factors(const std::vector<ScoredRow>& rows,
                                                     const std::vector<FactorChoice>& choices,
                                                     const FactorSelectionOptions& options = {}) {
  detail::check_scored_rows(rows);
  const auto halves = detail::halves_by_concept(rows, options);
  std::map<std::pair<std::string, std::string>, double> chosen;
  for (const auto& c : choices) chosen[{c.method, c.concept_text}] = c.factor;
  std::vector<ScoredRow> out;
  for (const auto& r : rows) {
    const auto it = chosen.find({r.method, r.concept_text});
    if (it != chosen.end() && it->second == r.factor && detail::in(halves.at(r.concept_text).report, r.instruction_index))
      out.push_back(r);
  }
  FLAS_CHECK(!out.empty(), "factor selection: no report-half rows at the chosen factors");
  return out;
}

// Mean score against factor, per method and split, over all instructions: the mean over concepts of each
// concept's mean (so every concept weighs the same), with the metrics averaged the same way.
struct FactorCurvePoint {
  std::string method, split;
  double factor = 0, mean = 0;
  std::size_t samples = 0, concepts = 0;
  std::map<std::string, double> metric_means;
};

inline std::vector<FactorCurvePoint> factor_curves(const std::vector<ScoredRow>& rows) {
  detail::check_scored_rows(rows);
  using Key = std::tuple<std::string, std::string, double>;  // method, split, factor
  struct ConceptSums {
    double total = 0;
    std::size_t n = 0;
    std::map<std::string, std::pair<double, std::size_t>> metrics;
  };
  std::map<Key, std::map<std::string, ConceptSums>> groups;
  for (const auto& r : rows) {
    auto& s = groups[{r.method, r.split, r.factor}][r.concept_text];
    s.total += r.score;
    s.n += 1;
    for (const auto& [name, v] : r.metrics) {
      s.metrics[name].first += v;
      s.metrics[name].second += 1;
    }
  }
  std::vector<FactorCurvePoint> out;
  for (const auto& [key, by_concept] : groups) {
    FactorCurvePoint p{std::get<0>(key), std::get<1>(key), std::get<2>(key), 0, 0, by_concept.size(), {}};
    std::map<std::string, std::pair<double, std::size_t>> metric_concepts;  // sum of concept means, concepts
    for (const auto& [concept_text, s] : by_concept) {
      p.mean += s.total / double(s.n);
      p.samples += s.n;
      for (const auto& [name, m] : s.metrics) {
        metric_concepts[name].first += m.first / double(m.second);
        metric_concepts[name].second += 1;
      }
    }
    p.mean /= double(p.concepts);
    for (const auto& [name, m] : metric_concepts) p.metric_means[name] = m.first / double(m.second);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace flas::eval
