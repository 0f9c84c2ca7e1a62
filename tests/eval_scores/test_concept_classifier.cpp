// Concept classifiers: logistic-regression gradient against finite differences, held-out AUROC on the
// real AxBench files, save/load round trip, and refusals of bad labelled files.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "flas/eval/concept_classifier_set.hpp"

using namespace flas;
using namespace flas::eval;

namespace {
const std::filesystem::path data_dir = std::filesystem::path(FLAS_PROJECT_DATA) / "axbench";

std::filesystem::path write_temp(const std::string& name, const std::string& contents) {
  const auto path = std::filesystem::temp_directory_path() / ("flas_eval_scores_" + name);
  std::ofstream(path) << contents;
  return path;
}

std::string row(const std::string& output, const std::string& concept_text, const std::string& category, int id) {
  return nlohmann::json({{"input", "q"}, {"output", output}, {"output_concept", concept_text}, {"category", category},
                         {"concept_id", id}})
             .dump() + "\n";
}
}  // namespace

TEST_CASE("logistic regression: gradient matches central finite differences") {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  const std::size_t dims = 7;
  std::vector<SparseVector> x;
  std::vector<int> y;
  for (int i = 0; i < 12; ++i) {
    SparseVector v;
    for (std::uint32_t j = 0; j < dims; ++j)
      if ((i + j) % 3 != 0) {
        v.index.push_back(j);
        v.value.push_back(u(rng));
      }
    x.push_back(v);
    y.push_back(i % 3 == 0 ? 1 : 0);  // unbalanced, so class weights matter
  }
  LogisticOptions options;
  options.l2 = 0.3;
  LogisticModel m{std::vector<double>(dims), 0.2};
  for (auto& w : m.weights) w = u(rng);
  const auto g = logistic_objective(m, x, y, options);
  const double h = 1e-6;
  for (std::size_t j = 0; j <= dims; ++j) {
    auto plus = m, minus = m;
    (j < dims ? plus.weights[j] : plus.bias) += h;
    (j < dims ? minus.weights[j] : minus.bias) -= h;
    const double numeric =
        (logistic_objective(plus, x, y, options).loss - logistic_objective(minus, x, y, options).loss) / (2 * h);
    const double analytic = j < dims ? g.weight_gradient[j] : g.bias_gradient;
    CHECK(analytic == doctest::Approx(numeric).epsilon(1e-6));
  }
  // Training drives the gradient to (near) zero.
  const auto trained = train_logistic(x, y, dims, options);
  const auto at_optimum = logistic_objective(trained, x, y, options);
  for (const double v : at_optimum.weight_gradient) CHECK(std::abs(v) < 1e-5);
  CHECK(at_optimum.loss < g.loss);
}

TEST_CASE("concept classifiers: held-out AUROC on the AxBench files is well above chance") {
  const std::vector<std::filesystem::path> files = {
      data_dir / "concept10_prod_2b_l20_v1_train.jsonl", data_dir / "concept10_prod_2b_l20_v1_latent_eval.jsonl",
      data_dir / "conceptFD_prod_2b_l20_v1_train.jsonl", data_dir / "conceptFD_prod_2b_l20_v1_latent_eval.jsonl"};
  const auto set = ConceptClassifierSet::train(files);
  CHECK(set.size() == 26);
  double worst = 1, worst_own = 1;
  for (const auto& c : set.classifiers()) {
    const auto& h = c.held_out();
    MESSAGE("held-out AUROC ", h.auroc, " (own negatives ", h.auroc_own_negatives.value_or(-1), "; ", h.positives,
            "+/", h.negatives, "- of which ", h.own_negatives, " own) for '", c.concept_text().substr(0, 60), "'");
    worst = std::min(worst, h.auroc);
    REQUIRE(h.auroc_own_negatives.has_value());
    worst_own = std::min(worst_own, *h.auroc_own_negatives);
    CHECK(h.auroc > 0.9);
    CHECK(*h.auroc_own_negatives > 0.85);
  }
  MESSAGE("worst held-out AUROC ", worst, ", worst against own negatives ", worst_own);

  // Save, load: the same probabilities, no retraining.
  const auto file = std::filesystem::temp_directory_path() / "flas_eval_scores_classifiers.json";
  set.save(file);
  CHECK_FALSE(std::filesystem::exists(file.string() + ".tmp"));
  const auto loaded = ConceptClassifierSet::load(file);
  REQUIRE(loaded.size() == set.size());
  const std::string text = "The rental shop offers equipment such as tents and bikes for hire.";
  for (const auto& c : set.classifiers()) {
    CHECK(loaded.probability(c.concept_text(), text) == c.probability(text));
    CHECK(loaded.at(c.concept_text()).held_out().auroc == c.held_out().auroc);
  }
  std::filesystem::remove(file);
  CHECK_THROWS_WITH_AS(loaded.at("no such concept"), doctest::Contains("'no such concept'"), Error);
}

TEST_CASE("concept classifiers: bad labelled files are refused, naming the file or concept") {
  const auto empty = write_temp("empty.jsonl", "\n\n");
  CHECK_THROWS_WITH_AS(load_concept_rows({empty}), doctest::Contains((empty.string() + ": no rows").c_str()), Error);

  const auto no_negatives = write_temp("no_negatives.jsonl", row("tents for hire", "rentals", "positive", 0) +
                                                                 row("bikes for hire", "rentals", "positive", 0));
  CHECK_THROWS_WITH_AS(ConceptClassifierSet::train({no_negatives}), doctest::Contains("concept 'rentals': no negative"),
                       Error);

  const auto no_positives = write_temp("no_positives.jsonl", row("a poem", "poetry", "negative", 0) +
                                                                 row("tents for hire", "rentals", "positive", 1) +
                                                                 row("soup", "EEEEE", "negative", -1));
  CHECK_THROWS_WITH_AS(load_concept_rows({no_positives}), doctest::Contains("concept 'poetry': no positive rows"), Error);

  const auto orphan = write_temp("orphan.jsonl", row("tents for hire", "rentals", "positive", 0) +
                                                     row("a vehicle", "vehicle//a means", "hard negative", 7));
  CHECK_THROWS_WITH_AS(load_concept_rows({orphan}), doctest::Contains((orphan.string() + ":2: hard negative of concept_id 7").c_str()),
                       Error);

  const auto bad_category = write_temp("bad_category.jsonl", row("x", "rentals", "maybe", 0));
  CHECK_THROWS_WITH_AS(load_concept_rows({bad_category}), doctest::Contains("category 'maybe'"), Error);
  for (const auto& f : {empty, no_negatives, no_positives, orphan, bad_category}) std::filesystem::remove(f);
}

TEST_CASE("concept rows: hard negatives belong to the concept with their concept_id in the same file") {
  const auto file = write_temp("hard.jsonl", row("a van rental", "rentals", "positive", 3) +
                                                 row("a poem", "rentals", "negative", 3) +
                                                 row("a vehicle of thought", "vehicle//a means", "hard negative", 3) +
                                                 row("soup", "EEEEE", "negative", -1));
  const auto corpus = load_concept_rows({file});
  REQUIRE(corpus.concepts.size() == 1);
  CHECK(corpus.concepts[0].concept_text == "rentals");
  CHECK(corpus.concepts[0].own_negatives == std::vector<std::string>{"a poem", "a vehicle of thought"});
  CHECK(corpus.shared_negatives == std::vector<std::string>{"soup"});
  std::filesystem::remove(file);
}
