// Summary table: means over concepts, bootstrap CI properties, Markdown and CSV.
#include <doctest/doctest.h>

#include <random>

#include "flas/eval/summary_table.hpp"

using namespace flas;
using namespace flas::eval;

namespace {
std::vector<MetricSample> random_samples(std::size_t concepts, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 2);
  std::vector<MetricSample> s;
  for (std::size_t c = 0; c < concepts; ++c)
    for (int k = 0; k < 5; ++k) s.push_back({"flas", "held_out", "concept " + std::to_string(c), "score", u(rng)});
  return s;
}
}  // namespace

TEST_CASE("summary: mean of concept means, counts, a deterministic bootstrap interval") {
  // Concept a: 1 and 2 (mean 1.5, 2 samples); concept b: 0 (mean 0) -> 0.75 over concepts.
  const std::vector<MetricSample> s = {{"m", "held_in", "a", "score", 1},
                                       {"m", "held_in", "a", "score", 2},
                                       {"m", "held_in", "b", "score", 0},
                                       {"m", "held_in", "b", "fluency", 2}};
  const auto rows = summarise(s);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].metric == "fluency");
  CHECK(rows[0].ci.low == 2);  // one concept: [mean, mean]
  CHECK(rows[0].ci.high == 2);
  CHECK(rows[1].mean == doctest::Approx(0.75));
  CHECK(rows[1].samples == 3);
  CHECK(rows[1].concepts == 2);
  CHECK(rows[1].ci.low >= 0);
  CHECK(rows[1].ci.high <= 1.5);

  const auto few = summarise(random_samples(8, 1));
  const auto many = summarise(random_samples(200, 1));
  for (const auto* r : {&few[0], &many[0]}) {
    CHECK(r->ci.low <= r->mean);
    CHECK(r->mean <= r->ci.high);
  }
  MESSAGE("CI width with 8 concepts ", few[0].ci.high - few[0].ci.low, ", with 200 ", many[0].ci.high - many[0].ci.low);
  CHECK(many[0].ci.high - many[0].ci.low < 0.5 * (few[0].ci.high - few[0].ci.low));
  const auto again = summarise(random_samples(8, 1));
  CHECK(again[0].ci.low == few[0].ci.low);
  CHECK(again[0].ci.high == few[0].ci.high);
  SummaryOptions other;
  other.seed = 99;
  CHECK(summarise(random_samples(8, 1), other)[0].ci.low != few[0].ci.low);

  CHECK_THROWS_WITH_AS(summarise({}), doctest::Contains("summary: no samples"), Error);
}

TEST_CASE("summary: from scored rows, as Markdown and CSV") {
  const std::vector<ScoredRow> scored = {{"flas", "a|b", "held_out", 5, 1.0, 1.2, {{"concept", 2.0}}},
                                         {"diff,mean", "a|b", "held_out", 5, 2.0, 0.6, {}}};
  const auto rows = summarise(metric_samples(scored));
  REQUIRE(rows.size() == 3);
  const auto md = summary_markdown(rows);
  CHECK(md.find("| method | split | metric | mean | 95% CI (concepts) | samples | concepts |") == 0);
  CHECK(md.find("| flas | held_out | score | 1.200 | [1.200, 1.200] | 1 | 1 |") != std::string::npos);
  const auto csv = summary_csv(rows);
  CHECK(csv.find("method,split,metric,mean,ci_low,ci_high,samples,concepts\n") == 0);
  CHECK(csv.find("\"diff,mean\",held_out,score,0.600000,0.600000,0.600000,1,1\n") != std::string::npos);
}
