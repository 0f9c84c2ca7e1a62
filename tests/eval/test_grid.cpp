// The generation grid: an interrupted run (a torn last line included) resumes to the same JSON Lines
// as an uninterrupted one; the flow at T = 0 and DiffMean at strength 0 reproduce the unsteered model
// token for token; configs and stores with bad input fail with messages that name the problem.
#include <doctest/doctest.h>

#include <fstream>

#include "eval_test_support.hpp"
#include "flas/eval/generate_run.hpp"
#include "flas/eval/generation_shards.hpp"
#include "small_eval_grid.hpp"

using namespace flas;

namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("grid: an interrupted run resumes to the same records as an uninterrupted one") {
  const auto dir = testing::scratch_folder("grid");
  const auto whole_cfg = eval::parse_eval_config(testing::small_eval_config(dir / "whole"), dir / "whole.json");
  const auto st = eval::generate_run<CpuBackend>(whole_cfg, false);
  // 3 concepts x 2 instructions x (2 flas + 2 diffmean + 1 prompt) + 2 unsteered
  CHECK(st.cells == 32);
  CHECK(st.generated == 32);
  const std::string whole = testing::generations_without_timings(whole_cfg.generations_file());

  auto part_json = testing::small_eval_config(dir / "part");
  part_json["diffmean"] = (dir / "whole/diffmean.safetensors").string();  // reuse the saved vectors
  const auto part_cfg = eval::parse_eval_config(part_json, dir / "part.json");
  {  // the first three batches, then a write torn in the middle of a line
    const auto& model = testing::chat_model();
    const auto& tok = testing::chat_tokenizer();
    auto meta = field::read_flow_meta(field::flow_meta_path(part_cfg.flow));
    field::FlasFlow<CpuBackend> flow(model.config(), model.inv_freq(), field::load_flow_weights(part_cfg.flow, model.config()));
    const auto dm = eval::load_diffmean(part_cfg.diffmean);
    auto plan = eval::plan_grid(part_cfg, eval::load_instructions(part_cfg));
    plan.resize(3);
    eval::GenerationStore store(part_cfg.generations_file());
    eval::GridRunner<CpuBackend> runner(model, tok, part_cfg, &flow, meta, &dm);
    eval::run_grid(plan, store, runner, [](const eval::GridBatch&, std::size_t) {});
    std::ofstream(part_cfg.generations_file(), std::ios::app) << R"({"method": "flas", "concept": "refer)";
  }
  const auto resumed = eval::generate_run<CpuBackend>(part_cfg, false);
  CHECK(resumed.already_done == 12);  // flas's batches hold 5, 5 and 2 cells
  CHECK(resumed.generated == 20);
  CHECK(testing::generations_without_timings(part_cfg.generations_file()) == whole);

  SUBCASE("a finished run generates nothing more") {
    const auto again = eval::generate_run<CpuBackend>(part_cfg, false);
    CHECK(again.generated == 0);
    CHECK(again.already_done == 32);
  }
}

TEST_CASE("grid: flow time 0 and DiffMean strength 0 are exactly the unsteered model") {
  const auto dir = testing::scratch_folder("zero");
  auto j = testing::small_eval_config(dir);
  j["temperature"] = 0;  // greedy
  j["methods"] = {{"flas", {0}}, {"diffmean", {0}}, {"none", {0}}};
  const auto cfg = eval::parse_eval_config(j, dir / "c.json");
  eval::generate_run<CpuBackend>(cfg, false);
  eval::GenerationStore store(cfg.generations_file());
  std::map<std::int64_t, std::vector<std::int64_t>> unsteered;
  for (const auto& r : store.records())
    if (r.cell.method == "none") unsteered[r.cell.instruction_index] = r.token_ids;
  REQUIRE(unsteered.size() == 2);
  int compared = 0;
  for (const auto& r : store.records())
    if (r.cell.method != "none") {
      CHECK(r.token_ids == unsteered[r.cell.instruction_index]);
      ++compared;
    }
  CHECK(compared == 12);
}

TEST_CASE("grid: steering changes the text, and the prompt method puts the concept in the prompt") {
  const auto dir = testing::scratch_folder("moves");
  auto j = testing::small_eval_config(dir);
  j["temperature"] = 0;
  j["methods"] = {{"flas", {8}}, {"prompt", {0}}, {"none", {0}}};
  const auto cfg = eval::parse_eval_config(j, dir / "c.json");
  eval::generate_run<CpuBackend>(cfg, false);
  eval::GenerationStore store(cfg.generations_file());
  std::map<std::int64_t, std::string> unsteered;
  for (const auto& r : store.records())
    if (r.cell.method == "none") unsteered[r.cell.instruction_index] = r.text;
  int changed = 0;
  for (const auto& r : store.records())
    if (r.cell.method == "flas") changed += r.text != unsteered[r.cell.instruction_index];
  CHECK(changed >= 4);  // of 6: T = 8 is a strong push
  CHECK(eval::fill_prompt_template(cfg.prompt_template, "Q?", "cats") == "Q?\n\nIn your answer, talk about cats.");
}

TEST_CASE("grid: bad configs and stores fail with clear messages") {
  const auto dir = testing::scratch_folder("bad");
  auto j = testing::small_eval_config(dir);
  j["methods"] = {{"flas", {1}}, {"telepathy", {1}}};
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("c.json: unknown method 'telepathy'"), Error);
  j = testing::small_eval_config(dir);
  j.erase("concept_data");
  j.erase("diffmean");
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("method 'diffmean' needs"), Error);
  j = testing::small_eval_config(dir);
  j["methods"]["flas"] = {-1};
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("factor -1"), Error);
  j = testing::small_eval_config(dir);
  j["instructions"]["count"] = 100000;
  const auto cfg = eval::parse_eval_config(j, dir / "c.json");
  CHECK_THROWS_WITH_AS(eval::load_instructions(cfg), doctest::Contains("alpaca_eval.json: holds 805 instructions"), Error);
  j = testing::small_eval_config(dir);
  j["colour"] = "blue";
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("unknown field 'colour'"), Error);
  // Integers that do not fit (nlohmann would convert them without a check).
  j = testing::small_eval_config(dir);
  j["samples"] = 1e300;
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("field 'samples' must be an integer that fits 64 bits, found 1e+300"), Error);
  j = testing::small_eval_config(dir);
  j["layer"] = 4294967296LL;
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("field 'layer' must be an integer that fits 32 bits"), Error);
  j = testing::small_eval_config(dir);
  j["seed"] = -1;
  CHECK_THROWS_WITH_AS(eval::parse_eval_config(j, dir / "c.json"), doctest::Contains("field 'seed' must be an integer"), Error);

  // A bad line in the middle of a store is an error, not a silent skip.
  { std::ofstream(dir / "g.jsonl") << "{\"not\": \"a record\"}\n{\"also\": 1}\n"; }
  CHECK_THROWS_WITH_AS(eval::GenerationStore(dir / "g.jsonl"), doctest::Contains("g.jsonl:1: not a generation record"), Error);
  // A token id beyond int64 (found by fuzz_generation_store: it was undefined behaviour).
  { std::ofstream(dir / "i.jsonl") << "{\"method\":\"flas\",\"concept\":\"c\",\"split\":\"held_in\",\"instruction_index\":0,"
                                       "\"instruction\":\"i\",\"factor\":1,\"sample\":0,\"text\":\"t\",\"token_ids\":[2,1e300]}\n{}\n"; }
  CHECK_THROWS_WITH_AS(eval::GenerationStore(dir / "i.jsonl"), doctest::Contains("'token_ids' must be an integer (int64), found 1e+300"), Error);
  // Part files (of a multi-rank run) holding a cell the plan lacks: the config changed; nothing merged or removed.
  {
    const auto plan = eval::plan_grid(cfg, {"one instruction", "another"});
    eval::GenerationStore merged(dir / "m.jsonl");
    std::ofstream(eval::generation_part_file(dir / "m.jsonl", 1))
        << "{\"method\":\"flas\",\"concept\":\"not in the config\",\"split\":\"held_in\",\"instruction_index\":0,"
           "\"instruction\":\"i\",\"factor\":1,\"sample\":0,\"text\":\"t\",\"token_ids\":[2]}\n";
    CHECK_THROWS_WITH_AS(eval::merge_generation_parts(merged, plan, dir / "m.jsonl"),
                         doctest::Contains("m.jsonl: the part files hold generations of cells that this run's plan does not have"), Error);
    CHECK(eval::generation_part_files(dir / "m.jsonl").size() == 1);
    CHECK(merged.records().empty());
  }
  // A torn last line is cut off.
  { std::ofstream(dir / "t.jsonl") << "{\"method\": \"fl"; }
  CHECK(eval::GenerationStore(dir / "t.jsonl").records().empty());
  CHECK(read_all(dir / "t.jsonl").empty());
}
