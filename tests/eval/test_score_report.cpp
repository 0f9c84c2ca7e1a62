// Offline scoring and the report, end to end on a small grid: every generation is scored (the
// unsteered ones against every concept), the unsteered replies sit on the calibrated scale where they
// should (full fluency and instruction scores for most), and the report writes its tables and a real
// PNG drawn by gnuplot.
#include <doctest/doctest.h>

#include <fstream>

#include "eval_test_support.hpp"
#include "flas/eval/generate_run.hpp"
#include "flas/eval/offline_scoring.hpp"
#include "flas/eval/report.hpp"

using namespace flas;

TEST_CASE("offline scores and report on a small grid") {
  const auto dir = testing::scratch_folder("report");
  const auto data = testing::project_data;
  const auto models = std::filesystem::path(FLAS_PROJECT_MODELS);
  const nlohmann::json j = {
      {"model", (models / "tiny-gemma2-chat").string()},
      {"flow", (models / "tiny-gemma2-chat-flow/flow.safetensors").string()},
      {"concept_data", {(data / "axbench/concept10_prod_2b_l20_v1_train.jsonl").string(),
                        (data / "axbench/concept10_prod_2b_l20_v1_latent_eval.jsonl").string()}},
      {"concepts", {{"held_in", {"references to rental services and associated equipment",
                                 "biographical information about a person."}},
                    {"held_out", {"layout attributes in a UI design context"}}}},
      {"instructions", {{"file", (data / "alpaca_eval.json").string()}, {"first", 0}, {"count", 4}}},
      {"methods", {{"flas", {0, 2, 6}}, {"prompt", {0}}, {"none", {0}}}},
      {"max_new_tokens", 24},
      {"batch_size", 12},
      {"out", dir.string()}};
  const auto cfg = eval::parse_eval_config(j, dir / "c.json");
  eval::generate_run<CpuBackend>(cfg, false);
  const auto classifiers = eval::classifiers_for_run(cfg);
  CHECK(std::filesystem::exists(eval::classifiers_file(cfg)));
  const auto scores = eval::score_offline(cfg, testing::chat_model(), testing::chat_tokenizer(), classifiers, false);
  // 3 concepts x 4 instructions x (3 flas + 1 prompt) + 4 unsteered x 3 concepts
  CHECK(scores.size() == 60);
  int unsteered = 0, full_fluency = 0;
  for (const auto& s : scores) {
    CHECK(std::isfinite(s.nll));
    CHECK(s.concept_probability >= 0);
    CHECK(s.concept_probability <= 1);
    if (s.gen.cell.method == "none") {
      ++unsteered;
      full_fluency += s.fluency_score == 2;
      CHECK(s.instruction_score >= 1);  // calibrated on these very replies: Q(0.1) and up
    }
  }
  CHECK(unsteered == 12);
  CHECK(full_fluency >= 9);  // Q(0.9) of their own NLL: at most one reply in ten above it
  eval::save_scores(eval::scores_file(cfg), scores);

  const auto rows = eval::load_scored_rows(eval::scores_file(cfg));
  CHECK(rows.size() == 60);
  const auto files = eval::write_report(rows, dir, "test");
  std::ifstream md(dir / "summary.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  for (const char* m : {"| flas | held_in | score |", "| prompt | held_out |", "| none | held_in | nll |"})
    CHECK_MESSAGE(text.find(m) != std::string::npos, m);
  for (const char* png : {"curves_held_in.png", "curves_held_out.png"}) {
    std::ifstream in(dir / png, std::ios::binary);
    char magic[8] = {};
    in.read(magic, 8);
    CHECK(std::string(magic + 1, 3) == "PNG");
    CHECK(std::filesystem::file_size(dir / png) > 10000);
  }
  SUBCASE("scoring without unsteered generations is refused, not guessed") {
    auto j2 = j;
    j2["methods"] = {{"flas", {2}}};
    j2["out"] = (dir / "noref").string();
    const auto cfg2 = eval::parse_eval_config(j2, dir / "c2.json");
    eval::generate_run<CpuBackend>(cfg2, false);
    CHECK_THROWS_WITH_AS(eval::score_offline(cfg2, testing::chat_model(), testing::chat_tokenizer(), classifiers, false),
                         doctest::Contains("no unsteered ('none') generations"), Error);
  }
}
