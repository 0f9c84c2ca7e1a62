// Factor selection on a hand-made table with a hand-derived answer (including a tie), and curves.
#include <doctest/doctest.h>

#include "flas/eval/factor_selection.hpp"

using namespace flas;
using namespace flas::eval;

namespace {
// scores[i][f] for instructions i = 0..3 and the given factors.
void add(std::vector<ScoredRow>& rows, const std::string& method, const std::string& concept_text,
         const std::vector<double>& factors, const std::vector<std::vector<double>>& scores) {
  for (std::size_t i = 0; i < scores.size(); ++i)
    for (std::size_t f = 0; f < factors.size(); ++f)
      rows.push_back({method, concept_text, "held_in", std::int64_t(i), factors[f], scores[i][f],
                      {{"concept", 2 * scores[i][f]}}});
}
}  // namespace

TEST_CASE("instruction halves: first half selects, second half reports (AxBench, ratio 0.5)") {
  auto h = split_instructions({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 0.5, "c");
  CHECK(h.selection == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(h.report == std::vector<std::int64_t>{5, 6, 7, 8, 9});
  // n = 5: round_half_even(2.5) = 2 report, 3 select. n = 7: round_half_even(3.5) = 4 report.
  CHECK(split_instructions({10, 11, 12, 13, 14}, 0.5, "c").report == std::vector<std::int64_t>{13, 14});
  CHECK(split_instructions({0, 1, 2, 3, 4, 5, 6}, 0.5, "c").selection == std::vector<std::int64_t>{0, 1, 2});
  CHECK_THROWS_WITH_AS(split_instructions({3}, 0.5, "lonely"), doctest::Contains("concept 'lonely' has 1 instruction"),
                       Error);
}

TEST_CASE("factor selection: argmax on the selection half, reported on the other, ties to the smaller factor") {
  std::vector<ScoredRow> rows;
  // Concept A, method m: factors 1, 2, 4; instructions 0,1 select, 2,3 report.
  //   selection means: f1 = (0.5+0.5)/2 = 0.5, f2 = (1+2)/2 = 1.5, f4 = (2+1)/2 = 1.5 -> tie, choose 2.
  //   report at f2: (1.0 + 0.0)/2 = 0.5 (though f4 would report 2.0: the choice must not see it).
  add(rows, "m", "A", {1, 2, 4}, {{0.5, 1, 2}, {0.5, 2, 1}, {0, 1, 2}, {0, 0, 2}});
  // Concept B, method m: the best is the largest factor: selection f4 = 2, report (1.5 + 0.5)/2 = 1.
  add(rows, "m", "B", {1, 2, 4}, {{0, 1, 2}, {0, 1, 2}, {0, 1, 1.5}, {0, 1, 0.5}});
  // Concept A, method "prompt": one factor, always chosen; report (2 + 1)/2.
  add(rows, "prompt", "A", {0}, {{1}, {1}, {2}, {1}});

  const auto choices = select_factors(rows);
  REQUIRE(choices.size() == 3);
  CHECK(choices[0].method == "m");
  CHECK(choices[0].concept_text == "A");
  CHECK(choices[0].factor == 2);
  CHECK(choices[0].selection_mean == doctest::Approx(1.5));
  CHECK(choices[0].selection_samples == 2);
  CHECK(choices[0].report_mean == doctest::Approx(0.5));
  CHECK(choices[0].report_samples == 2);
  CHECK(choices[0].report_metrics.at("concept") == doctest::Approx(1.0));
  CHECK(choices[0].split == "held_in");
  CHECK(choices[1].concept_text == "B");
  CHECK(choices[1].factor == 4);
  CHECK(choices[1].report_mean == doctest::Approx(1.0));
  CHECK(choices[2].method == "prompt");
  CHECK(choices[2].factor == 0);
  CHECK(choices[2].report_mean == doctest::Approx(1.5));

  const auto report = rows_at_chosen_factors(rows, choices);
  CHECK(report.size() == 6);
  for (const auto& r : report) CHECK(r.instruction_index >= 2);

  // Curves over all instructions, concept means averaged: method m at factor 4:
  // A mean (2+1+2+2)/4 = 1.75, B mean (2+2+1.5+0.5)/4 = 1.5 -> 1.625.
  const auto curves = factor_curves(rows);
  bool seen = false;
  for (const auto& p : curves)
    if (p.method == "m" && p.factor == 4) {
      seen = true;
      CHECK(p.mean == doctest::Approx(1.625));
      CHECK(p.samples == 8);
      CHECK(p.concepts == 2);
      CHECK(p.metric_means.at("concept") == doctest::Approx(3.25));
    }
  CHECK(seen);
}

TEST_CASE("factor selection: bad input is refused with a clear message") {
  CHECK_THROWS_WITH_AS(select_factors({}), doctest::Contains("no scored rows"), Error);
  std::vector<ScoredRow> rows;
  add(rows, "m", "A", {1}, {{1}, {1}});
  rows[1].split = "held_out";
  CHECK_THROWS_WITH_AS(select_factors(rows), doctest::Contains("concept 'A' is in split 'held_in' and in split 'held_out'"),
                       Error);
  rows[1].split = "held_in";
  rows[1].score = std::nan("");
  CHECK_THROWS_WITH_AS(select_factors(rows), doctest::Contains("method 'm', concept 'A', instruction 1"), Error);
  // The chosen factor was never run on the report half.
  std::vector<ScoredRow> partial;
  add(partial, "m", "A", {1, 2}, {{0, 2}, {0, 2}, {1, 1}, {1, 1}});
  std::erase_if(partial, [](const ScoredRow& r) { return r.factor == 2 && r.instruction_index >= 2; });
  CHECK_THROWS_WITH_AS(select_factors(partial), doctest::Contains("no rows on the report half at the chosen factor 2"),
                       Error);
}
