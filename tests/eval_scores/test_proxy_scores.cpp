// Repetition on hand-made strings; calibration to the 0..2 scale on hand-made reference samples.
#include <doctest/doctest.h>

#include "flas/eval/repetition.hpp"
#include "flas/eval/score_scale.hpp"

using namespace flas;
using namespace flas::eval;

TEST_CASE("repetition: repeated n-gram fraction and distinct-n on hand-made strings") {
  // 6 words "the cat the cat the cat": 6 unigrams (2 distinct), 5 bigrams (2 distinct), 3 4-grams (2 distinct).
  const std::string loop = "The cat, the cat; the CAT!";
  CHECK(repeated_ngram_fraction(loop, 1) == doctest::Approx(1 - 2.0 / 6));
  CHECK(repeated_ngram_fraction(loop, 2) == doctest::Approx(1 - 2.0 / 5));
  CHECK(repeated_ngram_fraction(loop, 4) == doctest::Approx(1 - 2.0 / 3));  // "the cat the cat", "cat the cat the"
  CHECK(distinct_n(loop, 2) == doctest::Approx(2.0 / 5));
  CHECK(repetition_rate(loop) == doctest::Approx(1.0 / 3));

  const std::string fluent = "A quick brown fox jumps over the lazy dog";
  CHECK(repeated_ngram_fraction(fluent, 1) == 0);
  CHECK(repetition_rate(fluent) == 0);
  CHECK(distinct_n(fluent, 3) == 1);
  const auto profile = repetition_profile(loop);
  REQUIRE(profile.size() == 4);
  CHECK(profile[1] == doctest::Approx(repeated_ngram_fraction(loop, 2)));

  // Fewer words than n: no n-grams, nothing repeated.
  CHECK(repeated_ngram_fraction("one two", 4) == 0);
  CHECK(distinct_n("", 1) == 1);
  CHECK_THROWS_WITH_AS(repeated_ngram_fraction("x", 0), doctest::Contains("at least 1"), Error);
}

TEST_CASE("quantile: linear interpolation between order statistics") {
  CHECK(quantile({3, 1, 2, 4}, 0.5) == doctest::Approx(2.5));
  CHECK(quantile({0, 10}, 0.9) == doctest::Approx(9));
  CHECK(quantile({7}, 0.1) == 7);
  CHECK_THROWS_WITH_AS(quantile({}, 0.5, "calibration 'x' reference"), doctest::Contains("calibration 'x' reference: no values"),
                       Error);
}

TEST_CASE("calibration: thresholds from reference samples, scores 0..2") {
  // Reference 0.00, 0.01, ..., 0.10 (11 values): Q(0.9) = 0.09, Q(0.1) = 0.01, Q(0.5) = 0.05.
  std::vector<double> ref;
  for (int i = 0; i <= 10; ++i) ref.push_back(i / 100.0);

  const auto concept_scale = Calibration::fit(ref, calibration_rules::concept_probability());
  CHECK(concept_scale.partial == doctest::Approx(0.09));
  CHECK(concept_scale.full == doctest::Approx(0.5));  // max(Q(0.9), 0.5)
  CHECK(concept_scale.score(0.05) == 0);
  CHECK(concept_scale.score(0.2) == 1);
  CHECK(concept_scale.score(0.5) == 2);
  // A reference that already looks conceptual: full = partial = its Q(0.9).
  const auto high = Calibration::fit(std::vector<double>{0.7, 0.8, 0.9}, calibration_rules::concept_probability());
  CHECK(high.full == doctest::Approx(0.88));
  CHECK(high.score(0.6) == 0);
  CHECK(high.score(0.95) == 2);

  // NLL (lower is better): 2 at or below Q(0.9), 1 up to 1.5 x Q(0.9).
  std::vector<double> nll;
  for (int i = 1; i <= 11; ++i) nll.push_back(double(i) / 10);  // 0.1 .. 1.1: Q(0.9) = 1.0
  const auto fluency = Calibration::fit(nll, calibration_rules::fluency_nll());
  CHECK(fluency.full == doctest::Approx(1.0));
  CHECK(fluency.partial == doctest::Approx(1.5));
  CHECK(fluency.score(1.0) == 2);
  CHECK(fluency.score(1.2) == 1);
  CHECK(fluency.score(1.6) == 0);

  // Repetition: additive margins over a reference that repeats nothing.
  const auto repetition = Calibration::fit(std::vector<double>(20, 0.0), calibration_rules::repetition());
  CHECK(repetition.full == doctest::Approx(0.05));
  CHECK(repetition.partial == doctest::Approx(0.25));
  CHECK(repetition.score(0.0) == 2);
  CHECK(repetition.score(0.2) == 1);
  CHECK(repetition.score(0.5) == 0);

  // PMI (higher is better): 2 at or above Q(0.1), 1 at or above half of it; a non-positive reference fails.
  const auto pmi = Calibration::fit(std::vector<double>{0.2, 0.4, 0.6, 0.8, 1.0, 1.2}, calibration_rules::instruction_pmi());
  CHECK(pmi.full == doctest::Approx(0.3));
  CHECK(pmi.partial == doctest::Approx(0.15));
  CHECK(pmi.score(0.31) == 2);
  CHECK(pmi.score(0.2) == 1);
  CHECK(pmi.score(0.0) == 0);
  CHECK_THROWS_WITH_AS(Calibration::fit(std::vector<double>{-0.5, 0.0, 0.1}, calibration_rules::instruction_pmi()),
                       doctest::Contains("calibration 'instruction_pmi'"), Error);
  CHECK_THROWS_WITH_AS(fluency.score(std::nan("")), doctest::Contains("'fluency_nll': raw value"), Error);
}

TEST_CASE("harmonic mean of the three 0..2 scores") {
  CHECK(harmonic_mean_score(2, 2, 2) == doctest::Approx(2));
  CHECK(harmonic_mean_score(1, 2, 2) == doctest::Approx(3.0 / (1 + 0.5 + 0.5)));
  CHECK(harmonic_mean_score(0, 2, 2) == 0);
  CHECK_THROWS_WITH_AS(harmonic_mean_score(3, 1, 1), doctest::Contains("not in [0, 2]"), Error);
}
