#pragma once
// The study's tables: one row per run (runs.csv: every split and flow time, with bootstrap intervals),
// and one row per variant over its seeds (results.csv, results.md: mean ± sample standard deviation;
// with a single seed, the run's 95% bootstrap interval over concepts instead).
#include <cmath>
#include <map>
#include <string>

#include "flas/ablate/ablation_config.hpp"
#include "flas/ablate/run_result.hpp"
#include "flas/eval/summary_table.hpp"

namespace flas::ablate {

struct Spread {
  double mean = 0, sd = 0;  // sd: sample standard deviation (0 with one value)
  std::size_t n = 0;
  eval::ConfidenceInterval ci;  // the one run's interval when n == 1
};

inline Spread spread(const std::vector<double>& xs, eval::ConfidenceInterval ci = {}) {
  Spread s;
  s.n = xs.size();
  for (double x : xs) s.mean += x / double(xs.size());
  for (double x : xs) s.sd += xs.size() > 1 ? (x - s.mean) * (x - s.mean) / double(xs.size() - 1) : 0.0;
  s.sd = std::sqrt(s.sd);
  s.ci = ci;
  return s;
}

struct VariantSummary {
  std::string variant;
  nlohmann::json overrides;
  std::vector<std::uint64_t> seeds;
  Spread val_on, held_out_on, train_seconds;
  // split -> flow time -> ratios to the unsteered model (concept score, classifier P, NLL)
  std::map<std::string, std::map<double, Spread>> score_ratio, concept_ratio, nll_ratio;
  std::vector<const RunResult*> runs;
};

// Groups the runs by variant, in the config's variant order (variants without a finished run are left out).
inline std::vector<VariantSummary> summarise_variants(const AblationConfig& c, const std::vector<RunResult>& results) {
  std::vector<VariantSummary> out;
  for (const auto& v : c.variants) {
    VariantSummary s{v.name, v.overrides};
    for (const auto& r : results)
      if (r.variant == v.name) s.runs.push_back(&r), s.seeds.push_back(r.seed);
    if (s.runs.empty()) continue;
    std::vector<double> val, ho, secs;
    for (const auto* r : s.runs) val.push_back(r->train.val_on), ho.push_back(r->train.held_out_on), secs.push_back(r->train.seconds);
    s.val_on = spread(val), s.held_out_on = spread(ho), s.train_seconds = spread(secs);
    for (const auto& row : s.runs.front()->strength) {
      std::vector<double> sr, cr, nr;
      for (const auto* r : s.runs) {
        const auto& x = strength_at(*r, row.split, row.factor);
        sr.push_back(x.score_ratio), cr.push_back(x.concept_ratio), nr.push_back(x.nll_ratio);
      }
      s.score_ratio[row.split][row.factor] = spread(sr, row.score_ratio_ci);
      s.concept_ratio[row.split][row.factor] = spread(cr, row.concept_ratio_ci);
      s.nll_ratio[row.split][row.factor] = spread(nr, row.nll_ratio_ci);
    }
    out.push_back(std::move(s));
  }
  return out;
}

inline std::string spread_text(const Spread& s, int digits = 2) {
  using eval::detail::fixed;
  if (s.n == 1 && s.ci.high > s.ci.low)
    return fixed(s.mean, digits) + " [" + fixed(s.ci.low, digits) + ", " + fixed(s.ci.high, digits) + "]";
  return fixed(s.mean, digits) + (s.n > 1 ? " ± " + fixed(s.sd, digits) : "");
}

inline std::string overrides_text(const nlohmann::json& o) {
  if (o.empty()) return "(base recipe)";
  std::string s;
  for (const auto& [k, v] : o.items()) s += (s.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

// The headline table at the report flow time.
inline std::string results_markdown(const AblationConfig& c, const std::vector<VariantSummary>& vs) {
  using eval::detail::markdown_cell;
  const double T = c.eval.report_flowtime;
  const std::string t = eval::detail::fixed(T, 1);
  auto at = [&](const std::map<std::string, std::map<double, Spread>>& m, const std::string& split) {
    const auto i = m.find(split);
    if (i == m.end() || !i->second.count(T)) return std::string("–");
    return spread_text(i->second.at(T));
  };
  std::string md = "| variant | changes | seeds | val. LM loss (T = 1) | held-out LM loss (T = 1) | concept score × (held-in, T = " + t +
                   ") | classifier P × (held-in) | NLL × (held-in) | concept score × (held-out) | training s |\n"
                   "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& v : vs)
    md += "| " + markdown_cell(v.variant) + " | " + markdown_cell(overrides_text(v.overrides)) + " | " +
          std::to_string(v.seeds.size()) + " | " + spread_text(v.val_on, 4) + " | " + spread_text(v.held_out_on, 4) + " | " +
          at(v.score_ratio, "held_in") + " | " + at(v.concept_ratio, "held_in") + " | " + at(v.nll_ratio, "held_in") + " | " +
          at(v.score_ratio, "held_out") + " | " + eval::detail::fixed(v.train_seconds.mean, 0) + " |\n";
  md += "\nRatios are to the unsteered model's on the same concepts and instructions (concept score: the offline "
        "classifier's calibrated score; NLL: the unsteered model's NLL per token of the reply). Cells are mean ± sample "
        "standard deviation over seeds; with one seed, the run's 95% paired-bootstrap interval over concepts.\n";
  return md;
}

inline std::string results_csv(const std::vector<VariantSummary>& vs) {
  using eval::detail::csv_field;
  std::string csv = "variant,changes,seeds,split,flowtime,score_ratio_mean,score_ratio_sd,concept_ratio_mean,concept_ratio_sd,"
                    "nll_ratio_mean,nll_ratio_sd,val_loss_mean,val_loss_sd,held_out_loss_mean,held_out_loss_sd,train_seconds_mean\n";
  auto num = [](double x) { return eval::detail::fixed(x, 6); };
  for (const auto& v : vs)
    for (const auto& [split, by_t] : v.score_ratio)
      for (const auto& [T, s] : by_t) {
        const auto& cr = v.concept_ratio.at(split).at(T);
        const auto& nr = v.nll_ratio.at(split).at(T);
        csv += csv_field(v.variant) + "," + csv_field(overrides_text(v.overrides)) + "," + std::to_string(v.seeds.size()) + "," +
               split + "," + num(T) + "," + num(s.mean) + "," + num(s.sd) + "," + num(cr.mean) + "," + num(cr.sd) + "," +
               num(nr.mean) + "," + num(nr.sd) + "," + num(v.val_on.mean) + "," + num(v.val_on.sd) + "," +
               num(v.held_out_on.mean) + "," + num(v.held_out_on.sd) + "," + num(v.train_seconds.mean) + "\n";
      }
  return csv;
}

// One row per run, split and flow time: every recipe key, the training figures and the intervals.
inline std::string runs_csv(const std::vector<RunResult>& results) {
  using eval::detail::csv_field;
  auto num = [](double x) { return eval::detail::fixed(x, 6); };
  std::string csv = "variant,seed";
  for (const auto& a : axes()) csv += std::string(",") + a.name;
  csv += ",steps,val_on,val_off,held_out_on,held_out_off,train_seconds,eval_seconds,split,flowtime,concepts,"
         "concept_probability,concept_score,nll,score_ratio,score_lo,score_hi,concept_ratio,concept_lo,concept_hi,"
         "nll_ratio,nll_lo,nll_hi\n";
  for (const auto& r : results)
    for (const auto& s : r.strength) {
      csv += csv_field(r.variant) + "," + std::to_string(r.seed);
      for (const auto& a : axes()) {
        const auto& v = r.recipe.at(a.name);
        csv += "," + csv_field(v.is_string() ? v.get<std::string>() : v.dump());
      }
      const auto& t = r.train;
      csv += "," + std::to_string(t.steps) + "," + num(t.val_on) + "," + num(t.val_off) + "," + num(t.held_out_on) + "," +
             num(t.held_out_off) + "," + num(t.seconds) + "," + num(r.eval_seconds) + "," + s.split + "," + num(s.factor) + "," +
             std::to_string(s.concepts) + "," + num(s.concept_probability) + "," + num(s.concept_score) + "," + num(s.nll) +
             "," + num(s.score_ratio) + "," + num(s.score_ratio_ci.low) + "," + num(s.score_ratio_ci.high) + "," +
             num(s.concept_ratio) + "," + num(s.concept_ratio_ci.low) + "," + num(s.concept_ratio_ci.high) + "," +
             num(s.nll_ratio) + "," + num(s.nll_ratio_ci.low) + "," + num(s.nll_ratio_ci.high) + "\n";
    }
  return csv;
}

}  // namespace flas::ablate
