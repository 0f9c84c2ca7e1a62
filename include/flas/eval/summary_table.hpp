#pragma once
// The results table: method x split (held_in / held_out concepts) x metric -> mean, samples, concepts
// and a 95% bootstrap confidence interval over concepts.
//
// The mean is the mean over concepts of each concept's mean (every concept weighs the same, as in
// AxBench's per-concept aggregation). The interval resamples concepts with replacement (`resamples`
// times, seeded per table row, so it does not depend on row order) and takes the percentile interval of
// the resampled means (quantiles (1 - confidence) / 2 and (1 + confidence) / 2, interpolated). It shows
// how much the result depends on which concepts were drawn; with one concept it is [mean, mean].
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "flas/core/error.hpp"
#include "flas/eval/factor_selection.hpp"
#include "flas/eval/score_scale.hpp"

namespace flas::eval {

struct MetricSample {
  std::string method, split, concept_text, metric;
  double value = 0;
};

// Samples from scored rows: "score" and every entry of `metrics`.
inline std::vector<MetricSample> metric_samples(const std::vector<ScoredRow>& rows) {
  std::vector<MetricSample> out;
  for (const auto& r : rows) {
    out.push_back({r.method, r.split, r.concept_text, "score", r.score});
    for (const auto& [name, v] : r.metrics) out.push_back({r.method, r.split, r.concept_text, name, v});
  }
  return out;
}

struct SummaryOptions {
  std::size_t resamples = 2000;
  std::uint64_t seed = 2024;
  double confidence = 0.95;
};

struct ConfidenceInterval {
  double low = 0, high = 0;
};

// Percentile bootstrap interval of the mean of `concept_means` (see the note at the top).
inline ConfidenceInterval bootstrap_ci(const std::vector<double>& concept_means, std::size_t resamples,
                                       std::uint64_t seed, double confidence, const std::string& what = "bootstrap") {
  FLAS_CHECK(!concept_means.empty(), what, ": no concepts to resample");
  FLAS_CHECK(resamples >= 1, what, ": needs at least one resample");
  FLAS_CHECK(confidence > 0 && confidence < 1, what, ": confidence ", confidence, " is not in (0, 1)");
  std::mt19937_64 rng(seed);  // fully specified by the standard: the same draws everywhere
  const std::size_t n = concept_means.size();
  std::vector<double> means(resamples);
  for (auto& m : means) {
    double total = 0;
    for (std::size_t k = 0; k < n; ++k) total += concept_means[rng() % n];  // bias < n / 2^64
    m = total / double(n);
  }
  return {quantile(means, (1 - confidence) / 2, what), quantile(means, (1 + confidence) / 2, what)};
}

struct SummaryRow {
  std::string method, split, metric;
  double mean = 0;
  ConfidenceInterval ci;
  std::size_t samples = 0, concepts = 0;
};

inline std::vector<SummaryRow> summarise(const std::vector<MetricSample>& samples, const SummaryOptions& options = {}) {
  FLAS_CHECK(!samples.empty(), "summary: no samples to summarise");
  using Key = std::tuple<std::string, std::string, std::string>;  // method, split, metric
  std::map<Key, std::map<std::string, std::pair<double, std::size_t>>> groups;  // -> concept -> (sum, n)
  for (const auto& s : samples) {
    FLAS_CHECK(std::isfinite(s.value), "summary: method '", s.method, "', concept '", s.concept_text, "', metric '",
               s.metric, "': value ", s.value, " is not finite");
    auto& g = groups[{s.method, s.split, s.metric}][s.concept_text];
    g.first += s.value;
    g.second += 1;
  }
  std::vector<SummaryRow> out;
  for (const auto& [key, by_concept] : groups) {
    const auto& [method, split, metric] = key;
    SummaryRow row{method, split, metric, 0, {}, 0, by_concept.size()};
    std::vector<double> concept_means;
    for (const auto& [concept_text, g] : by_concept) {
      concept_means.push_back(g.first / double(g.second));
      row.samples += g.second;
      row.mean += concept_means.back();
    }
    row.mean /= double(row.concepts);
    std::uint64_t row_seed = options.seed;  // FNV-1a of the row's name, mixed into the seed
    for (const unsigned char ch : method + '\x1f' + split + '\x1f' + metric) row_seed = (row_seed ^ ch) * 1099511628211ull;
    row.ci = bootstrap_ci(concept_means, options.resamples, row_seed, options.confidence,
                          "summary '" + method + "/" + split + "/" + metric + "'");
    out.push_back(std::move(row));
  }
  return out;
}

namespace detail {
inline std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}
inline std::string markdown_cell(const std::string& s) {
  std::string out;
  for (const char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace detail

inline std::string summary_markdown(const std::vector<SummaryRow>& rows, double confidence = 0.95) {
  std::string out = "| method | split | metric | mean | " + detail::fixed(100 * confidence, 0) +
                    "% CI (concepts) | samples | concepts |\n|---|---|---|---:|---|---:|---:|\n";
  for (const auto& r : rows)
    out += "| " + detail::markdown_cell(r.method) + " | " + detail::markdown_cell(r.split) + " | " +
           detail::markdown_cell(r.metric) + " | " + detail::fixed(r.mean, 3) + " | [" + detail::fixed(r.ci.low, 3) +
           ", " + detail::fixed(r.ci.high, 3) + "] | " + std::to_string(r.samples) + " | " +
           std::to_string(r.concepts) + " |\n";
  return out;
}

inline std::string summary_csv(const std::vector<SummaryRow>& rows) {
  std::string out = "method,split,metric,mean,ci_low,ci_high,samples,concepts\n";
  for (const auto& r : rows)
    out += detail::csv_field(r.method) + "," + detail::csv_field(r.split) + "," + detail::csv_field(r.metric) + "," +
           detail::fixed(r.mean, 6) + "," + detail::fixed(r.ci.low, 6) + "," + detail::fixed(r.ci.high, 6) + "," +
           std::to_string(r.samples) + "," + std::to_string(r.concepts) + "\n";
  return out;
}

}  // namespace flas::eval
