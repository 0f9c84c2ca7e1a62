// Tokenisation and tf-idf against a hand-computed three-document example; AUROC against a brute-force
// pair count.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "flas/eval/auroc.hpp"
#include "flas/eval/text_features.hpp"

using namespace flas;
using namespace flas::eval;

TEST_CASE("words: lowercase alphanumeric runs, punctuation separates, UTF-8 kept whole") {
  CHECK(words("Don't STOP, 2 days!") == std::vector<std::string>{"don", "t", "stop", "2", "days"});
  CHECK(words("  caf\xc3\xa9-au-lait ") == std::vector<std::string>{"caf\xc3\xa9", "au", "lait"});
  CHECK(words("...").empty());
  CHECK(unigrams_and_bigrams("A b. c") == std::vector<std::string>{"a", "b", "c", "a b", "b c"});
}

TEST_CASE("tf-idf: a three-document example computed by hand") {
  // Documents: "a b", "a a c", "b c". Terms and document frequencies (N = 3):
  //   a:2  b:2  c:2  "a b":1  "a a":1  "a c":1  "b c":1
  // idf = ln(4 / (1 + df)) + 1:  df 2 -> ln(4/3) + 1,  df 1 -> ln 2 + 1.
  const auto v = TfidfVectorizer::fit({"a b", "a a c", "b c"});
  REQUIRE(v.size() == 7);
  CHECK(v.vocabulary() == std::vector<std::string>{"a", "a a", "a b", "a c", "b", "b c", "c"});  // sorted
  const double idf2 = std::log(4.0 / 3.0) + 1, idf1 = std::log(2.0) + 1;
  CHECK(v.idf()[*v.feature_of("a")] == doctest::Approx(idf2));
  CHECK(v.idf()[*v.feature_of("a c")] == doctest::Approx(idf1));

  // "a a c": a twice (tf 1 + ln 2), c once, "a a" once, "a c" once.
  const auto x = v.transform("a a c");
  const double wa = (1 + std::log(2.0)) * idf2, wc = idf2, waa = idf1, wac = idf1;
  const double norm = std::sqrt(wa * wa + wc * wc + waa * waa + wac * wac);
  REQUIRE(x.index == std::vector<std::uint32_t>{0, 1, 3, 6});  // a, "a a", "a c", c
  CHECK(x.value[0] == doctest::Approx(wa / norm));
  CHECK(x.value[1] == doctest::Approx(waa / norm));
  CHECK(x.value[2] == doctest::Approx(wac / norm));
  CHECK(x.value[3] == doctest::Approx(wc / norm));

  // Unknown terms are ignored; nothing known is the zero vector.
  CHECK(v.transform("zebra").index.empty());
  const auto b = v.transform("b zebra");
  REQUIRE(b.index.size() == 1);
  CHECK(b.value[0] == doctest::Approx(1.0));

  // min_document_frequency drops the bigrams seen once; JSON round trip keeps the features.
  CHECK(TfidfVectorizer::fit({"a b", "a a c", "b c"}, 2).vocabulary() == std::vector<std::string>{"a", "b", "c"});
  const auto back = TfidfVectorizer::from_json(v.to_json(), "test");
  CHECK(back.transform("a a c").value == x.value);
  CHECK_THROWS_WITH_AS(TfidfVectorizer::from_json({{"vocabulary", {"a"}}, {"idf", {1.0, 2.0}}}, "model.json"),
                       doctest::Contains("model.json: tf-idf has 1 terms but 2 idf weights"), Error);
}

TEST_CASE("AUROC equals the brute-force pair count, ties as half") {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 5 + int(rng() % 60);
    std::vector<double> scores;
    std::vector<int> labels;
    for (int i = 0; i < n; ++i) {
      labels.push_back(int(rng() % 3 == 0));
      scores.push_back(double(rng() % 7) + 0.5 * labels.back());  // few distinct values: many ties
    }
    labels[0] = 1;
    labels[1] = 0;
    double wins = 0, pairs = 0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        if (labels[i] == 1 && labels[j] == 0) {
          pairs += 1;
          wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
        }
    CHECK(auroc(scores, labels) == doctest::Approx(wins / pairs).epsilon(1e-12));
  }
  CHECK(auroc(std::vector<double>{0.1, 0.9}, std::vector<int>{0, 1}) == 1.0);
  CHECK(auroc(std::vector<double>{0.5, 0.5}, std::vector<int>{0, 1}) == 0.5);
  CHECK_THROWS_WITH_AS(auroc(std::vector<double>{0.1, 0.9}, std::vector<int>{1, 1}, "concept 'x'"),
                       doctest::Contains("concept 'x': needs both classes"), Error);
  CHECK_THROWS_WITH_AS(auroc(std::vector<double>{0.1}, std::vector<int>{1, 0}), doctest::Contains("1 scores but 2 labels"),
                       Error);
}
