#pragma once
// The study's report: collects the finished runs' result.json, writes the tables (results.md/csv,
// runs.csv) and the pictures (gnuplot): scores.png (concept score and NLL ratios per variant at the
// report flow time, with seed spread), validation.png (every variant's validation loss curve), and
// axis_<key>.png for each numeric axis (score against the axis' value).
#include <set>

#include "flas/ablate/ablation_table.hpp"
#include "flas/eval/factor_plots.hpp"

namespace flas::ablate {

// Every finished run of the study, in config order; unfinished ones are counted in `missing`.
inline std::vector<RunResult> collect_results(const AblationConfig& c, std::size_t* missing = nullptr) {
  std::vector<RunResult> out;
  std::size_t absent = 0;
  for (const auto& v : c.variants)
    for (auto seed : c.seeds) {
      const auto f = result_file(run_dir(c, v, seed));
      if (std::filesystem::exists(f)) out.push_back(load_run_result(f));
      else ++absent;
    }
  if (missing) *missing = absent;
  return out;
}

namespace detail {
using eval::gnuplot_quote;
inline const char* plot_head = "set terminal pngcairo size 1100,600 font \"DejaVu Sans,10\"\nset termoption noenhanced\nset grid\n";

// Mean ± sd (or the one run's interval) as the three columns "mean low high" of an error bar.
inline std::string bar_columns(const Spread& s) {
  const double lo = s.n == 1 ? s.ci.low : s.mean - s.sd, hi = s.n == 1 ? s.ci.high : s.mean + s.sd;
  return std::to_string(s.mean) + " " + std::to_string(lo) + " " + std::to_string(hi);
}

inline void plot_scores(const AblationConfig& c, const std::vector<VariantSummary>& vs, const std::filesystem::path& dir) {
  const double T = c.eval.report_flowtime;
  std::string dat;
  for (const auto& v : vs) {
    const auto& in = v.score_ratio.at("held_in").at(T);
    const auto& nll = v.nll_ratio.at("held_in").at(T);
    dat += gnuplot_quote(v.variant) + " " + bar_columns(in) + " " + bar_columns(nll) + "\n";
  }
  io::write_text_atomically(dir / "scores.dat", dat);
  const auto q = gnuplot_quote((dir / "scores.dat").string());
  eval::run_gnuplot(dir / "scores.gp",
                    std::string(plot_head) + "set output " + gnuplot_quote((dir / "scores.png").string()) +
                        "\nset multiplot layout 1,2 title " +
                        gnuplot_quote("Ablation at T = " + eval::detail::fixed(T, 1) +
                                      " (held-in concepts; bars: mean over seeds, whiskers: ± sd, or the 95% CI with one seed)") +
                        "\nset style fill solid 0.5\nset boxwidth 0.6\nset xtics rotate by -40 left\nset bmargin 12\nset key off\n"
                        "set yrange [0:*]\nset arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2\n"
                        "set title \"concept score / unsteered (higher: more concept)\"\nplot " + q +
                        " using 0:2:xtic(1) with boxes lc 1, " + q + " using 0:2:3:4 with yerrorbars lc rgb \"black\" pt 0\n"
                        "set title \"NLL / unsteered (lower: more fluent)\"\nplot " + q + " using 0:5:xtic(1) with boxes lc 2, " + q +
                        " using 0:5:6:7 with yerrorbars lc rgb \"black\" pt 0\nunset multiplot\n");
}

inline void plot_validation(const std::vector<VariantSummary>& vs, const std::filesystem::path& dir) {
  std::string dat, plot;
  int block = 0;
  const auto q = gnuplot_quote((dir / "validation.dat").string());
  // gnuplot cycles 8 colours: past the eighth variant, dashes and squares tell lines apart.
  for (const auto& v : vs) {
    // Mean over seeds at each step every seed validated at.
    std::map<std::int64_t, std::vector<double>> at_step;
    for (const auto* r : v.runs)
      for (const auto& p : r->train.curve) at_step[p.step].push_back(p.loss_on);
    dat += "# " + v.variant + "\n";
    for (const auto& [step, xs] : at_step)
      if (xs.size() == v.runs.size()) dat += std::to_string(step) + " " + std::to_string(spread(xs).mean) + "\n";
    dat += "\n\n";
    plot += std::string(block ? ", \\\n     " : "") + q + " index " + std::to_string(block) +
            " using 1:2 with linespoints lc " + std::to_string(1 + block % 8) + " dt " + std::to_string(1 + block / 8) +
            " pt " + std::to_string(block / 8 ? 5 : 7) + " ps 0.7 lw 2 title " + gnuplot_quote(v.variant);
    ++block;
  }
  io::write_text_atomically(dir / "validation.dat", dat);
  eval::run_gnuplot(dir / "validation.gp",
                    std::string(plot_head) + "set output " + gnuplot_quote((dir / "validation.png").string()) +
                        "\nset title \"Validation LM loss at T = 1 (held-in concepts; mean over seeds)\"\n"
                        "set xlabel \"optimiser step\"\nset ylabel \"LM loss\"\nset key outside right\nplot " + plot + "\n");
}

// For each numeric axis: the variants that change only it (and the base recipe), score against value.
inline std::vector<std::filesystem::path> plot_numeric_axes(const AblationConfig& c, const std::vector<VariantSummary>& vs,
                                                            const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  const double T = c.eval.report_flowtime;
  std::set<std::string> keys;
  for (const auto& v : vs)
    for (const auto& [k, value] : v.overrides.items())
      if (value.is_number()) keys.insert(k);
  for (const auto& key : keys) {
    std::map<double, std::pair<Spread, Spread>> points;  // value -> (held-in, held-out) score ratio
    for (const auto& v : vs) {
      // Explicit list: the variants that change only `key`. Grid: the slice where every other axis is
      // at its first value (the grid's first variant).
      bool on_slice = true;
      for (const auto& [k, value] : v.overrides.items())
        if (k != key) on_slice = on_slice && !c.axis_order.empty() && value == c.variants.front().overrides.at(k);
      if (!on_slice) continue;
      const double x = v.runs.front()->recipe.at(key).get<double>();
      if (points.count(x)) continue;
      const auto& held_out = v.score_ratio.count("held_out") ? v.score_ratio.at("held_out").at(T) : Spread{};
      points[x] = {v.score_ratio.at("held_in").at(T), held_out};
    }
    if (points.size() < 2) continue;
    std::string dat;
    for (const auto& [x, p] : points) dat += std::to_string(x) + " " + bar_columns(p.first) + " " + bar_columns(p.second) + "\n";
    const auto stem = dir / ("axis_" + key);
    io::write_text_atomically(stem.string() + ".dat", dat);
    const auto q = gnuplot_quote(stem.string() + ".dat");
    eval::run_gnuplot(stem.string() + ".gp",
                      std::string(plot_head) + "set output " + gnuplot_quote(stem.string() + ".png") + "\nset title " +
                          gnuplot_quote("Concept score / unsteered at T = " + eval::detail::fixed(T, 1) + " against " + key) +
                          "\nset xlabel " + gnuplot_quote(key) + "\nset ylabel \"concept score ratio\"\nset key top left\nplot " + q +
                          " using 1:2:3:4 with yerrorlines pt 7 lw 2 title \"held-in concepts\", " + q +
                          " using 1:5:6:7 with yerrorlines pt 5 lw 2 title \"held-out concepts\"\n");
    out.push_back(stem.string() + ".png");
  }
  return out;
}
}  // namespace detail

struct StudyReport {
  std::vector<std::filesystem::path> written;
  std::size_t runs = 0, missing = 0;
};

inline StudyReport write_study_report(const AblationConfig& c, bool plots = true) {
  StudyReport rep;
  const auto results = collect_results(c, &rep.missing);
  rep.runs = results.size();
  FLAS_CHECK(!results.empty(), c.out_dir.string(), ": no finished runs to report (run `flas ablate run` first)");
  const auto vs = summarise_variants(c, results);
  const auto& d = c.out_dir;
  std::string md = "# Ablation: " + c.file.filename().string() + "\n\n" + results_markdown(c, vs);
  if (rep.missing) md += "\n" + std::to_string(rep.missing) + " runs of the study are not finished yet and are left out.\n";
  io::write_text_atomically(d / "results.md", md);
  io::write_text_atomically(d / "results.csv", results_csv(vs));
  io::write_text_atomically(d / "runs.csv", runs_csv(results));
  rep.written = {d / "results.md", d / "results.csv", d / "runs.csv"};
  if (plots) {
    detail::plot_scores(c, vs, d);
    detail::plot_validation(vs, d);
    rep.written.push_back(d / "scores.png");
    rep.written.push_back(d / "validation.png");
    for (auto& p : detail::plot_numeric_axes(c, vs, d)) rep.written.push_back(std::move(p));
  }
  return rep;
}

}  // namespace flas::ablate
