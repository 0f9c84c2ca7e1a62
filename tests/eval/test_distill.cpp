// Prompt distillation: replies written with the concept in the prompt, kept by the concept-gain
// filter, come out as AxBench rows that the trainer reads; the filter keeps exactly what its rule says.
#include <doctest/doctest.h>

#include <fstream>

#include "eval_test_support.hpp"
#include "flas/eval/prompt_distillation.hpp"
#include "flas/train/axbench_data.hpp"

using namespace flas;

TEST_CASE("prompt distillation: filtered replies become training rows") {
  const auto& model = testing::chat_model();
  const auto& tok = testing::chat_tokenizer();
  eval::DistillOptions opt;
  opt.concepts = {"references to the ocean and marine life", "cooking recipes and kitchen tools"};
  opt.instructions = {"Write a short poem about the city.", "How do I plan a trip?", "What is a good hobby?"};
  opt.per_concept = 2;
  opt.max_new_tokens = 24;
  opt.min_gain = 0.3;
  const auto rows = eval::distil_concepts(model, tok, opt, false);
  REQUIRE(rows.size() == 4);
  // Round robin over the pool: concept 0 gets instructions 0 and 1, concept 1 gets 2 and 0.
  CHECK(rows[0].instruction == opt.instructions[0]);
  CHECK(rows[2].instruction == opt.instructions[2]);
  CHECK(rows[3].instruction == opt.instructions[0]);
  for (const auto& r : rows) {
    CHECK(r.kept == (!r.reply.empty() && r.gain >= opt.min_gain && r.repetition <= opt.max_repetition));
    MESSAGE("gain ", r.gain, " kept ", r.kept, ": ", r.reply.substr(0, 60));
  }
  auto all = opt;
  all.min_gain = -1e9;
  all.max_repetition = 1;
  const auto every = eval::distil_concepts(model, tok, all, false);
  const std::string text = eval::distilled_jsonl(every);
  const auto dir = testing::scratch_folder("distill");
  { std::ofstream(dir / "rows.jsonl") << text; }
  const auto data = train::load_axbench({dir / "rows.jsonl"});
  CHECK(data.concepts.size() == 2);
  CHECK(data.samples.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(every[i].gain == doctest::Approx(rows[i].gain));  // greedy: the same replies, the same gains
    CHECK(data.samples[i].response == every[i].reply);
  }
  CHECK_THROWS_WITH_AS(eval::distil_concepts(model, tok, eval::DistillOptions{}, false), doctest::Contains("no concepts"), Error);
}
