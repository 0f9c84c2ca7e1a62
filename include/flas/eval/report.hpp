#pragma once
// Step 3 of an evaluation: what people look at. From <out>/scores.jsonl (and judge.jsonl when a judge
// was run) it writes
//   summary.md / summary.csv   method x split x metric at each concept's chosen factor (chosen on half
//                              the instructions, reported on the other half), with bootstrap CIs;
//   strength.md / strength.csv every (method, factor): concept probability and NLL, and their ratios
//                              to the unsteered model, with paired bootstrap CIs over concepts;
//   curves_<split>.png         concept / fluency / instruction / harmonic mean against the factor.
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "flas/eval/factor_plots.hpp"
#include "flas/eval/factor_selection.hpp"
#include "flas/eval/summary_table.hpp"
#include "flas/io/atomic_write.hpp"

namespace flas::eval {

// Scored rows from a scores file: score = the proxy harmonic mean; the raw and 0-2 values as metrics.
inline std::vector<ScoredRow> load_scored_rows(const std::filesystem::path& file) {
  std::ifstream in(file);
  FLAS_CHECK(in, file.string(), ": cannot open the scores (run `flas eval score` first)");
  std::vector<ScoredRow> rows;
  std::string line;
  std::int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    try {
      const auto j = nlohmann::json::parse(line);
      ScoredRow r{j.at("method"), j.at("concept"), j.at("split"), j.at("instruction_index"), j.at("factor"),
                  j.at("proxy_harmonic_mean"), {}};
      for (const char* m : {"concept_probability", "nll", "pmi", "repetition", "concept_score", "fluency_score",
                            "instruction_score"})
        r.metrics[m] = j.at(m).get<double>();
      rows.push_back(std::move(r));
    } catch (const std::exception& e) {
      fail(file.string(), ":", n, ": not a score row (", e.what(), ")");
    }
  }
  FLAS_CHECK(!rows.empty(), file.string(), ": no score rows");
  return rows;
}

struct StrengthRow {
  std::string method, split;
  double factor = 0;
  double concept_probability = 0, concept_score = 0, nll = 0;  // means over concepts of concept means
  double concept_ratio = 0, score_ratio = 0, nll_ratio = 0;     // to the unsteered model's
  ConfidenceInterval concept_ratio_ci, score_ratio_ci, nll_ratio_ci;  // paired bootstrap over concepts
  std::size_t concepts = 0;
};

namespace detail {
// Per concept: the mean of `metric` over rows matching (method, split, factor).
inline std::map<std::string, double> concept_means(const std::vector<ScoredRow>& rows, const std::string& method,
                                                   const std::string& split, double factor, const std::string& metric) {
  std::map<std::string, std::pair<double, std::size_t>> acc;
  for (const auto& r : rows)
    if (r.method == method && r.split == split && r.factor == factor) {
      auto& a = acc[r.concept_text];
      a.first += r.metrics.at(metric);
      a.second += 1;
    }
  std::map<std::string, double> out;
  for (const auto& [c, a] : acc) out[c] = a.first / double(a.second);
  return out;
}

// The ratio of means (a over b, paired by concept) and its percentile bootstrap interval.
inline std::pair<double, ConfidenceInterval> paired_ratio(const std::vector<double>& a, const std::vector<double>& b,
                                                          std::uint64_t seed, std::size_t resamples = 2000) {
  auto ratio = [](double x, double y) { return y > 0 ? x / y : std::numeric_limits<double>::infinity(); };
  double sa = 0, sb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sa += a[i], sb += b[i];
  std::mt19937_64 rng(seed);
  std::vector<double> draws(resamples);
  for (auto& d : draws) {
    double x = 0, y = 0;
    for (std::size_t k = 0; k < a.size(); ++k) {
      const std::size_t i = rng() % a.size();
      x += a[i];
      y += b[i];
    }
    d = ratio(x, y);
  }
  return {ratio(sa, sb), {quantile(draws, 0.025, "ratio CI"), quantile(draws, 0.975, "ratio CI")}};
}
}  // namespace detail

inline std::vector<StrengthRow> strength_table(const std::vector<ScoredRow>& rows) {
  std::vector<StrengthRow> out;
  std::map<std::tuple<std::string, std::string, double>, int> seen;
  for (const auto& r : rows) seen[{r.method, r.split, r.factor}] = 1;
  for (const auto& [key, _] : seen) {
    const auto& [method, split, factor] = key;
    const auto cp = detail::concept_means(rows, method, split, factor, "concept_probability");
    const auto cs = detail::concept_means(rows, method, split, factor, "concept_score");
    const auto nl = detail::concept_means(rows, method, split, factor, "nll");
    const auto cp0 = detail::concept_means(rows, "none", split, 0, "concept_probability");
    const auto cs0 = detail::concept_means(rows, "none", split, 0, "concept_score");
    const auto nl0 = detail::concept_means(rows, "none", split, 0, "nll");
    std::vector<double> p, p0, c, c0, n, n0;  // paired by concept
    for (const auto& [concept_text, v] : cp) {
      if (!cp0.count(concept_text)) continue;
      p.push_back(v), p0.push_back(cp0.at(concept_text));
      c.push_back(cs.at(concept_text)), c0.push_back(cs0.at(concept_text));
      n.push_back(nl.at(concept_text)), n0.push_back(nl0.at(concept_text));
    }
    FLAS_CHECK(!p.empty(), "strength table: no unsteered ('none') rows for the concepts of ", method, "/", split);
    StrengthRow s{method, split, factor};
    s.concepts = p.size();
    for (std::size_t i = 0; i < p.size(); ++i) {
      s.concept_probability += p[i] / double(p.size());
      s.concept_score += c[i] / double(p.size());
      s.nll += n[i] / double(p.size());
    }
    std::tie(s.concept_ratio, s.concept_ratio_ci) = detail::paired_ratio(p, p0, 11);
    std::tie(s.score_ratio, s.score_ratio_ci) = detail::paired_ratio(c, c0, 12);
    std::tie(s.nll_ratio, s.nll_ratio_ci) = detail::paired_ratio(n, n0, 13);
    out.push_back(s);
  }
  return out;
}

inline std::string strength_markdown(const std::vector<StrengthRow>& rows) {
  using detail::fixed;
  auto ratio = [](double r, const ConfidenceInterval& ci) {
    return fixed(r, 2) + " [" + fixed(ci.low, 2) + ", " + fixed(ci.high, 2) + "]";
  };
  std::string out =
      "| method | split | factor | concept score (0-2) | x unsteered [95% CI] | P(concept) | x unsteered [95% CI] | "
      "NLL/token | x unsteered [95% CI] | concepts |\n|---|---|---:|---:|---|---:|---|---:|---|---:|\n";
  for (const auto& r : rows)
    out += "| " + r.method + " | " + r.split + " | " + fixed(r.factor, 2) + " | " + fixed(r.concept_score, 3) + " | " +
           ratio(r.score_ratio, r.score_ratio_ci) + " | " + fixed(r.concept_probability, 3) + " | " +
           ratio(r.concept_ratio, r.concept_ratio_ci) + " | " + fixed(r.nll, 3) + " | " + ratio(r.nll_ratio, r.nll_ratio_ci) +
           " | " + std::to_string(r.concepts) + " |\n";
  return out;
}

inline std::string strength_csv(const std::vector<StrengthRow>& rows) {
  using detail::fixed;
  std::string out = "method,split,factor,concept_score,score_ratio,score_ratio_low,score_ratio_high,concept_probability,"
                    "concept_ratio,concept_ratio_low,concept_ratio_high,nll,nll_ratio,nll_ratio_low,nll_ratio_high,concepts\n";
  for (const auto& r : rows) {
    out += r.method + "," + r.split + "," + fixed(r.factor, 4);
    for (double v : {r.concept_score, r.score_ratio, r.score_ratio_ci.low, r.score_ratio_ci.high, r.concept_probability,
                     r.concept_ratio, r.concept_ratio_ci.low, r.concept_ratio_ci.high, r.nll, r.nll_ratio,
                     r.nll_ratio_ci.low, r.nll_ratio_ci.high})
      out += "," + fixed(v, 6);
    out += "," + std::to_string(r.concepts) + "\n";
  }
  return out;
}

// One panel per metric, one line per method, for one split.
inline std::vector<MetricPanel> curve_panels(const std::vector<FactorCurvePoint>& curves, const std::string& split) {
  std::vector<MetricPanel> panels{{"concept (0-2)", {}}, {"fluency (0-2)", {}}, {"instruction (0-2)", {}},
                                  {"harmonic mean (0-2)", {}}};
  for (const auto& p : curves) {
    if (p.split != split) continue;
    panels[0].methods[p.method].push_back({p.factor, p.metric_means.at("concept_score")});
    panels[1].methods[p.method].push_back({p.factor, p.metric_means.at("fluency_score")});
    panels[2].methods[p.method].push_back({p.factor, p.metric_means.at("instruction_score")});
    panels[3].methods[p.method].push_back({p.factor, p.mean});
  }
  return panels;
}

using io::write_text_atomically;

struct ReportFiles {
  std::vector<std::filesystem::path> written;
};

// Writes every report file into `out_dir`; `title` heads the plots.
inline ReportFiles write_report(const std::vector<ScoredRow>& rows, const std::filesystem::path& out_dir,
                                const std::string& title, bool plots = true) {
  ReportFiles f;
  std::filesystem::create_directories(out_dir);
  const auto choices = select_factors(rows);
  const auto summary = summarise(metric_samples(rows_at_chosen_factors(rows, choices)));
  std::string chosen = "| method | concept | split | chosen factor | selection-half score | report-half score |\n|---|---|---|---:|---:|---:|\n";
  for (const auto& c : choices)
    chosen += "| " + c.method + " | " + detail::markdown_cell(c.concept_text.substr(0, 60)) + " | " + c.split + " | " +
              detail::fixed(c.factor, 2) + " | " + detail::fixed(c.selection_mean, 3) + " | " +
              detail::fixed(c.report_mean, 3) + " |\n";
  const auto strength = strength_table(rows);
  const std::string md = "# Evaluation summary (offline proxies)\n\n## At each concept's chosen factor (report half)\n\n" +
                         summary_markdown(summary) + "\n## Concept probability and NLL at every factor\n\n" +
                         strength_markdown(strength) + "\n## Chosen factors\n\n" + chosen;
  write_text_atomically(out_dir / "summary.md", md);
  write_text_atomically(out_dir / "summary.csv", summary_csv(summary));
  write_text_atomically(out_dir / "strength.csv", strength_csv(strength));
  f.written = {out_dir / "summary.md", out_dir / "summary.csv", out_dir / "strength.csv"};
  if (plots) {
    const auto curves = factor_curves(rows);
    for (const std::string split : {"held_in", "held_out"}) {
      auto panels = curve_panels(curves, split);
      if (panels[0].methods.empty()) continue;
      const auto png = out_dir / ("curves_" + split + ".png");
      plot_factor_curves(panels, png, title + " (" + split + " concepts, offline proxies)");
      f.written.push_back(png);
    }
  }
  return f;
}

}  // namespace flas::eval
