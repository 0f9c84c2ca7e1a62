#pragma once
// Score-versus-strength plots, drawn by gnuplot (Debian's gnuplot-nox): one panel per metric, one line
// per method; a method with a single factor (prompting, the unsteered model) is a dashed horizontal
// line. Writes <stem>.dat and <stem>.gp beside the PNG, so a reader can restyle the figure.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/io/atomic_write.hpp"

namespace flas::eval {

struct CurvePoint {
  double factor = 0, mean = 0;
};

struct MetricPanel {
  std::string metric;                                      // axis label, e.g. "concept (0-2)"
  std::map<std::string, std::vector<CurvePoint>> methods;  // method -> points in factor order
};

inline std::string gnuplot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Writes a gnuplot script and runs it; throws with the script's name if gnuplot fails.
inline void run_gnuplot(const std::filesystem::path& script_file, const std::string& script) {
  io::write_text_atomically(script_file, script);
  const std::string cmd = "gnuplot " + gnuplot_quote(script_file.string()) + " 2>&1";
  FLAS_CHECK(std::system(cmd.c_str()) == 0, script_file.string(), ": gnuplot failed (scripts/deps.sh installs gnuplot-nox)");
}

// Writes the data and script, then runs gnuplot; throws with gnuplot's status if it fails.
inline void plot_factor_curves(const std::vector<MetricPanel>& panels, const std::filesystem::path& png,
                               const std::string& title) {
  FLAS_CHECK(!panels.empty(), png.string(), ": nothing to plot");
  auto stem = png;
  stem.replace_extension();
  const auto dat = stem.string() + ".dat", gp = stem.string() + ".gp";
  std::string data, script;
  double xmax = 0;
  for (const auto& p : panels)
    for (const auto& [m, pts] : p.methods)
      for (const auto& q : pts) xmax = std::max(xmax, q.factor);
  if (xmax <= 0) xmax = 1;
  int block = 0;
  std::vector<std::vector<std::string>> plot_parts(panels.size());
  for (std::size_t i = 0; i < panels.size(); ++i) {
    int colour = 1;
    for (const auto& [method, pts] : panels[i].methods) {
      data += "# " + panels[i].metric + " / " + method + "\n";
      const bool flat = pts.size() == 1;
      for (const auto& q : pts) data += std::to_string(q.factor) + " " + std::to_string(q.mean) + "\n";
      if (flat) data += std::to_string(xmax) + " " + std::to_string(pts[0].mean) + "\n";
      data += "\n\n";
      plot_parts[i].push_back(gnuplot_quote(dat) + " index " + std::to_string(block++) + " using 1:2 with " +
                              (flat ? "lines dt 2" : "linespoints pt 7") + " lw 2 lc " + std::to_string(colour++) +
                              " title " + gnuplot_quote(method + (flat ? " (no factor)" : "")));
    }
  }
  const int cols = panels.size() > 1 ? 2 : 1, rows = int((panels.size() + 1) / 2);
  script += "set terminal pngcairo size " + std::to_string(560 * cols) + "," + std::to_string(420 * rows) +
            " font \"DejaVu Sans,10\"\n";
  script += "set termoption noenhanced\nset output " + gnuplot_quote(png.string()) + "\n";
  script += "set multiplot layout " + std::to_string(rows) + "," + std::to_string(cols) + " title " +
            gnuplot_quote(title) + "\n";
  script += "set grid\nset key top right box opaque\nset xlabel \"factor (flow time T for flas, strength for diffmean)\"\n";
  for (std::size_t i = 0; i < panels.size(); ++i) {
    script += "set ylabel " + gnuplot_quote(panels[i].metric) + "\nset title " + gnuplot_quote(panels[i].metric) + "\nplot ";
    for (std::size_t k = 0; k < plot_parts[i].size(); ++k) script += (k ? ", \\\n     " : "") + plot_parts[i][k];
    script += "\n";
  }
  script += "unset multiplot\n";
  std::filesystem::create_directories(png.parent_path().empty() ? "." : png.parent_path());
  io::write_text_atomically(dat, data);
  io::write_text_atomically(gp, script);
  const std::string cmd = "gnuplot " + gnuplot_quote(gp) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  FLAS_CHECK(rc == 0, png.string(), ": gnuplot failed (status ", rc, "; is gnuplot installed? scripts/deps.sh installs gnuplot-nox); script: ", gp);
}

}  // namespace flas::eval
