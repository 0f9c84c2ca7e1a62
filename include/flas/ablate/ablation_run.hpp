#pragma once
// Runs an ablation study: for every variant and seed, train a flow (include/flas/train/train_run.hpp)
// and evaluate it (include/flas/eval: generate, offline proxies, strength table), each in its own run
// folder. Every stage leaves a file written atomically when it is done (train.json, result.json), and
// the stages themselves resume (trainer states, the append-only generations), so a killed study
// restarts where it stopped without redoing finished work. `shard`/`shards` split the runs over
// processes (job arrays, or ranks of mpirun) that share the results folder.
#include <chrono>
#include <cstdio>
#include <fstream>

#include "flas/ablate/ablation_config.hpp"
#include "flas/ablate/run_result.hpp"
#include "flas/eval/generate_run.hpp"
#include "flas/eval/offline_scoring.hpp"
#include "flas/eval/progress_bar.hpp"
#include "flas/eval/report.hpp"
#include "flas/io/atomic_write.hpp"
#include "flas/train/train_run.hpp"

namespace flas::ablate {

struct RunOptions {
  std::size_t shard = 0, shards = 1;  // run i is this process's when i % shards == shard
  bool progress = true;
};

struct StudyStats {
  std::size_t runs = 0, already_done = 0, ran = 0, other_shards = 0;
  double seconds = 0;
};

// The evaluation config of one run: the study's eval config, pointed at the run's flow and folder,
// generating "flas" at the study's flow times and the unsteered baseline.
inline eval::EvalConfig run_eval_config(const AblationConfig& c, const train::TrainRecipe& r, const std::filesystem::path& dir) {
  auto e = eval::load_eval_config(c.eval.config);
  e.model = r.model_dir;
  e.flow = dir / "train" / "flow.safetensors";
  e.diffmean.clear();
  e.out_dir = dir / "eval";
  e.factors = {{"flas", c.eval.flowtimes}, {"none", {0.0}}};
  e.flow_steps = 0;  // the flow's JSON holds the variant's inference steps
  if (c.eval.instructions > 0) e.instruction_count = std::min(e.instruction_count, c.eval.instructions);
  return e;
}

namespace detail {
// Refuses to resume a run folder made from a different recipe (the config changed under it).
inline void check_or_record_recipe(const std::filesystem::path& dir, const nlohmann::json& recipe) {
  const auto file = dir / "recipe.json";
  if (!std::filesystem::exists(file)) {
    std::filesystem::create_directories(dir);
    io::write_text_atomically(file, recipe.dump(1) + "\n");
    return;
  }
  const auto old = read_json_file(file);
  for (const auto& [k, v] : recipe.items())
    FLAS_CHECK(old.contains(k) && old[k] == v, dir.string(), ": this run was made with ", k, " = ",
               old.contains(k) ? old[k].dump() : "(absent)", ", the config now says ", v.dump(),
               "; delete the folder to rerun it, or restore the config");
}

// The classifiers every run is scored with, trained once per study (they depend only on the data).
inline void share_classifiers(const AblationConfig& c, const eval::EvalConfig& run_cfg) {
  auto shared = run_cfg;
  shared.out_dir = c.out_dir;
  const auto shared_file = eval::classifiers_file(shared), run_file = eval::classifiers_file(run_cfg);
  if (std::filesystem::exists(run_file)) return;
  eval::classifiers_for_run(shared);  // trains and saves when missing
  std::filesystem::create_directories(run_cfg.out_dir);
  io::write_text_atomically(run_file, train::read_text(shared_file));
}
}  // namespace detail

// Trains and evaluates one variant at one seed, or returns its recorded result.
template <Backend TrainB, Backend EvalB>
RunResult run_one(const AblationConfig& c, const Variant& v, std::uint64_t seed, bool progress) {
  const auto dir = run_dir(c, v, seed);
  const std::string at = c.file.string() + ": variant '" + v.name + "'";
  auto recipe = variant_recipe(c.base, v.overrides, seed, at);
  detail::check_or_record_recipe(dir, recipe_json(recipe));
  if (std::filesystem::exists(result_file(dir))) return load_run_result(result_file(dir));

  RunResult res{v.name, seed, v.overrides, recipe_json(recipe)};
  if (std::filesystem::exists(dir / "train.json")) {
    res.train = load_train_record(dir / "train.json");
  } else {
    recipe.out_dir = dir / "train";
    recipe.resume = true;  // continues from the latest trainer state, or starts afresh
    recipe.progress = progress;
    ValidationLog log(dir / "validation.jsonl");
    const auto rep = train::train_flow<TrainB>(recipe, [&](const train::ValidationPoint& p) { log.append(p); });
    res.train = train_record(rep, log.points());
    save_train_record(dir / "train.json", res.train);
  }

  const auto t0 = std::chrono::steady_clock::now();
  const auto cfg = run_eval_config(c, recipe, dir);
  detail::share_classifiers(c, cfg);
  eval::generate_run<EvalB>(cfg, progress);
  {
    const auto model = gemma2::Model<EvalB>::load(cfg.model);
    const auto tok = io::Tokenizer::load(cfg.model);
    const auto scores = eval::score_offline(cfg, model, tok, eval::classifiers_for_run(cfg), progress);
    eval::save_scores(eval::scores_file(cfg), scores);
  }
  for (const auto& s : eval::strength_table(eval::load_scored_rows(eval::scores_file(cfg))))
    if (s.method == "flas") res.strength.push_back(s);
  res.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  save_run_result(result_file(dir), res);
  return res;
}

// Runs this shard's part of the study, one run after another.
template <Backend TrainB, Backend EvalB>
StudyStats run_study(const AblationConfig& c, const RunOptions& o = {}) {
  FLAS_CHECK(o.shards >= 1 && o.shard < o.shards, "ablation: shard ", o.shard, " of ", o.shards, " does not exist");
  const auto t0 = std::chrono::steady_clock::now();
  StudyStats st;
  std::vector<std::pair<const Variant*, std::uint64_t>> mine;
  std::size_t index = 0;
  // Seeds outermost: a study cut short still has every variant at its first seed.
  for (auto seed : c.seeds)
    for (const auto& v : c.variants) {
      ++st.runs;
      if (index++ % o.shards != o.shard) {
        ++st.other_shards;
        continue;
      }
      if (std::filesystem::exists(result_file(run_dir(c, v, seed)))) ++st.already_done;
      mine.emplace_back(&v, seed);
    }
  std::optional<eval::ProgressBar> bar;
  if (o.progress) bar.emplace("[flas ablate] runs", mine.size(), 0);
  for (const auto& [v, seed] : mine) {
    const bool done = std::filesystem::exists(result_file(run_dir(c, *v, seed)));
    if (o.progress && !done) std::fprintf(stderr, "\n[flas ablate] %s, seed %llu\n", v->name.c_str(), (unsigned long long)seed);
    run_one<TrainB, EvalB>(c, *v, seed, o.progress);
    st.ran += done ? 0 : 1;
    if (bar) bar->advance();
  }
  if (bar) bar->finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace flas::ablate
