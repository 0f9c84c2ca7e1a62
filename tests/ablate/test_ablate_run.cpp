// A two-variant, few-step study on the bundled model, end to end: each run's flow equals the one
// `train_flow` makes from the same recipe directly, its result re-derives from its own scores, the
// report is written; and `flas ablate run` killed with SIGKILL (mid-training, mid-evaluation) and
// restarted ends with the same flows and results, bit for bit, as an uninterrupted study.
#include <doctest/doctest.h>

#include <sstream>

#include "flas/ablate/ablation_report.hpp"
#include "flas/ablate/ablation_run.hpp"
#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#include "support/child_process.hpp"

using namespace flas;

namespace {
const std::filesystem::path data_dir = FLAS_PROJECT_DATA, models_dir = FLAS_PROJECT_MODELS;

std::filesystem::path scratch(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("flas_ablate_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// The study of data/ablate/ci_two_variants.json with absolute paths, its results under `out`.
std::filesystem::path write_study(const std::filesystem::path& dir, std::int64_t steps) {
  auto j = nlohmann::json::parse(train::read_text(data_dir / "ablate/ci_two_variants.json"));
  auto e = nlohmann::json::parse(train::read_text(data_dir / "ablate/ci_eval.json"));
  e["model"] = (models_dir / "tiny-gemma2-chat").string();
  for (auto& f : e["concept_data"]) f = (data_dir / "ablate" / f.get<std::string>()).lexically_normal().string();
  e["instructions"]["file"] = (data_dir / "alpaca_eval.json").string();
  io::write_text_atomically(dir / "eval.json", e.dump(1));
  j["out"] = (dir / "out").string();
  j["train"]["model"] = (models_dir / "tiny-gemma2-chat").string();
  j["train"]["data"] = {(data_dir / "axbench/concept10_prod_2b_l20_v1_train.jsonl").string()};
  j["train"]["optimizer_steps"] = steps;
  j["eval"]["config"] = (dir / "eval.json").string();
  io::write_text_atomically(dir / "study.json", j.dump(1));
  return dir / "study.json";
}

std::string bytes(const std::filesystem::path& f) { return train::read_text(f); }

ablate::StudyStats study(const ablate::AblationConfig& c, ablate::RunOptions o) {
  return ablate::run_study<CpuBackend, CpuBackend>(c, o);
}

// The generations of a run, without the batches' wall times.
std::vector<nlohmann::json> generations_without_times(const std::filesystem::path& f) {
  std::vector<nlohmann::json> out;
  std::istringstream in(bytes(f));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("prefill_seconds");
    j.erase("decode_seconds");
    out.push_back(j);
  }
  return out;
}

// result.json without its wall times, which differ between any two runs.
nlohmann::json result_without_times(const std::filesystem::path& f) {
  auto j = nlohmann::json::parse(bytes(f));
  j["train"].erase("seconds");
  j.erase("eval_seconds");
  return j;
}
}  // namespace

TEST_CASE("a two-variant study trains, evaluates and reports each run") {
  const auto dir = scratch("run");
  const auto c = ablate::load_ablation_config(write_study(dir, 4));
  const auto st = ablate::run_study<CpuBackend, CpuBackend>(c, {0, 1, false});
  CHECK(st.runs == 2);
  CHECK(st.ran == 2);

  const auto results = ablate::collect_results(c);
  REQUIRE(results.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& r = results[i];
    const auto run = ablate::run_dir(c, c.variants[i], 1);
    CHECK(r.variant == c.variants[i].name);
    CHECK(r.train.steps == 4);
    CHECK(r.train.curve.size() == 2);  // validated at steps 2 and 4
    CHECK(r.train.curve.back().loss_on == r.train.val_on);
    // The flow is exactly what a direct training call with the variant's recipe makes.
    auto recipe = ablate::variant_recipe(c.base, c.variants[i].overrides, 1, "test");
    recipe.out_dir = dir / ("direct" + std::to_string(i));
    recipe.progress = false;
    const auto direct = train::train_flow<CpuBackend>(recipe);
    CHECK(bytes(direct.flow_file) == bytes(run / "train/flow.safetensors"));
    CHECK(direct.held_out_on == r.train.held_out_on);
    // The result's strength rows are the strength table of the run's own scores.
    const auto again = eval::strength_table(eval::load_scored_rows(run / "eval/scores.jsonl"));
    std::size_t flas_rows = 0;
    for (const auto& s : again)
      if (s.method == "flas") {
        ++flas_rows;
        CHECK(ablate::strength_at(r, s.split, s.factor).score_ratio == s.score_ratio);
        CHECK(ablate::strength_at(r, s.split, s.factor).nll_ratio == s.nll_ratio);
      }
    CHECK(flas_rows == 2);  // held-in and held-out at T = 2
  }
  // The N = 1 variant's flow integrates with one step at inference too.
  const auto meta = field::read_flow_meta(ablate::run_dir(c, c.variants[1], 1) / "train/flow.json");
  CHECK(meta.steps == 1);

  const auto rep = ablate::write_study_report(c, /*plots=*/true);
  CHECK(rep.runs == 2);
  CHECK(rep.missing == 0);
  for (const auto& f : rep.written) CHECK(std::filesystem::file_size(f) > 0);
  const auto md = bytes(c.out_dir / "results.md");
  CHECK(md.find("| N=1 | euler_steps=1 | 1 |") != std::string::npos);

  // A finished study run again does nothing.
  const auto st2 = ablate::run_study<CpuBackend, CpuBackend>(c, {0, 1, false});
  CHECK(st2.already_done == 2);
  CHECK(st2.ran == 0);

  // A changed config under an existing run folder is refused, naming the key.
  auto j = nlohmann::json::parse(bytes(c.file));
  j["train"]["lr"] = 0.01;
  io::write_text_atomically(c.file, j.dump());
  CHECK_THROWS_WITH_AS(study(ablate::load_ablation_config(c.file), {0, 1, false}),
                       doctest::Contains("this run was made with lr = 0.001"), flas::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("shards split the runs between processes") {
  const auto dir = scratch("shards");
  const auto c = ablate::load_ablation_config(write_study(dir, 2));
  const auto s1 = ablate::run_study<CpuBackend, CpuBackend>(c, {1, 2, false});
  CHECK(s1.ran == 1);
  CHECK(s1.other_shards == 1);
  CHECK(std::filesystem::exists(ablate::result_file(ablate::run_dir(c, c.variants[1], 1))));
  CHECK_FALSE(std::filesystem::exists(ablate::run_dir(c, c.variants[0], 1)));
  CHECK_THROWS_WITH_AS(study(c, {2, 2, false}), doctest::Contains("shard 2 of 2"), flas::Error);
  std::filesystem::remove_all(dir);
}

#ifdef FLAS_CLI_PATH
namespace {
flas::test::ChildProcess spawn_ablate(const std::filesystem::path& config) {
  return flas::test::ChildProcess({FLAS_CLI_PATH, "ablate", "run", "--config", config.string(), "--quiet", "--no-plots"});
}

// Starts the study and kills it with SIGKILL as soon as `ready()` holds; false if it ended first.
bool kill_when(const std::filesystem::path& config, const std::function<bool()>& ready) {
  auto child = spawn_ablate(config);
  if (!flas::test::wait_until(child, ready)) return false;
  return child.kill();
}
}  // namespace

TEST_CASE("flas ablate run killed mid-training and mid-evaluation resumes to the uninterrupted result") {
  const auto dir = scratch("kill");
  std::filesystem::create_directories(dir / "ref");
  std::filesystem::create_directories(dir / "killed");
  const auto ref = write_study(dir / "ref", 12), killed = write_study(dir / "killed", 12);
  REQUIRE(spawn_ablate(ref).exited_ok());
  const auto c = ablate::load_ablation_config(killed);
  const auto base_run = ablate::run_dir(c, c.variants[0], 1), last_run = ablate::run_dir(c, c.variants[1], 1);

  // 1: after the trainer's first state of the first variant (steps 3..12 still to go).
  CHECK(kill_when(killed, [&] { return !train::latest_state_folder(base_run / "train").empty(); }));
  CHECK_FALSE(std::filesystem::exists(base_run / "train.json"));
  // 2: once the first variant's generations have begun (its evaluation is under way).
  CHECK(kill_when(killed, [&] { return std::filesystem::exists(base_run / "eval/generations.jsonl"); }));
  // 3: during the second variant's training.
  CHECK(kill_when(killed, [&] { return !train::latest_state_folder(last_run / "train").empty(); }));
  CHECK_FALSE(std::filesystem::exists(ablate::result_file(last_run)));
  REQUIRE(spawn_ablate(killed).exited_ok());

  const auto rc = ablate::load_ablation_config(ref);
  for (std::size_t i = 0; i < c.variants.size(); ++i) {
    const auto a = ablate::run_dir(rc, rc.variants[i], 1), b = ablate::run_dir(c, c.variants[i], 1);
    CAPTURE(c.variants[i].name);
    CHECK(bytes(a / "train/flow.safetensors") == bytes(b / "train/flow.safetensors"));
    CHECK(generations_without_times(a / "eval/generations.jsonl") == generations_without_times(b / "eval/generations.jsonl"));
    CHECK(result_without_times(ablate::result_file(a)) == result_without_times(ablate::result_file(b)));
  }
  std::filesystem::remove_all(dir);
}
#endif
