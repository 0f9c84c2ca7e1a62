// flas eval: the AxBench-style steering evaluation (include/flas/eval): generate the grid, score it
// offline or with a judge, report it. Each step reads and writes files under the config's "out" folder;
// generation resumes, judging never pays twice for an answer.
#include <cstdio>

#include "backend_choice.hpp"
#include "commands.hpp"
#include "launch_communicator.hpp"
#include "flas/eval/generate_run.hpp"
#include "flas/eval/judge_run.hpp"
#include "flas/eval/offline_scoring.hpp"
#include "flas/eval/report.hpp"

namespace flas::cli {

namespace {
struct EvalArgs {
  std::string config, judge_base_url, judge_model, convention = "axbench", templates = "data/eval/judge";
  std::size_t workers = 8;
  double timeout = 60;
  bool quiet = false, no_plots = false;
  std::string backend;  // generate and score: --backend
};

// Under mpirun each rank generates its share of the grid; the result is the one file one process writes.
// Returns false on the ranks other than 0, which leave scoring and reporting to rank 0.
bool run_generate(const EvalArgs& a) {
  const auto cfg = eval::load_eval_config(a.config);
  bool root = true;
  eval::GenerateRunStats st;
  with_launch_communicator([&](const distributed::Communicator& comm) {
    with_backend(a.backend, [&]<class B>(std::type_identity<B>) { st = eval::generate_run<B>(cfg, !a.quiet, comm); });
    root = comm.is_root();
  });
  if (!root) return false;
  std::printf("[flas eval] %zu generations (%zu new, %zu already there) in %.1f s -> %s\n", st.cells, st.generated,
              st.already_done, st.seconds, cfg.generations_file().c_str());
  return true;
}

void run_score(const EvalArgs& a) {
  const auto cfg = eval::load_eval_config(a.config);
  const auto tok = io::Tokenizer::load(cfg.model);
  const auto classifiers = eval::classifiers_for_run(cfg);
  for (const auto& [c, auc] : classifiers.held_out_auroc())
    std::printf("[flas eval] concept classifier held-out AUROC %.3f  %.70s\n", auc, c.c_str());
  const auto scores = with_backend(a.backend, [&]<class B>(std::type_identity<B>) {
    const auto model = gemma2::Model<B>::load(cfg.model);
    return eval::score_offline(cfg, model, tok, classifiers, !a.quiet);
  });
  eval::save_scores(eval::scores_file(cfg), scores);
  std::printf("[flas eval] %zu score rows -> %s\n", scores.size(), eval::scores_file(cfg).c_str());
}

void run_judge(const EvalArgs& a) {
  const auto cfg = eval::load_eval_config(a.config);
  auto client = eval::judge::ChatClientConfig::from_environment(/*require_api_key=*/false);
  if (!a.judge_base_url.empty()) client.base_url = a.judge_base_url;
  if (!a.judge_model.empty()) client.model = a.judge_model;
  client.timeout_seconds = a.timeout;
  eval::judge::JudgeOptions opt{eval::judge::convention_from_string(a.convention), a.workers, 0};
  std::optional<eval::ProgressBar> bar;
  std::mutex m;
  const auto st = eval::judge_run(cfg, client, eval::judge::JudgeTemplates::load(a.templates), opt,
                                  [&](std::size_t done, std::size_t total) {
                                    std::lock_guard lock(m);
                                    if (a.quiet) return;
                                    if (!bar) bar.emplace("[flas eval] judging", total);
                                    bar->update(done);
                                  });
  if (bar) bar->finish();
  std::printf("[flas eval] judged %zu generations (%zu HTTP requests, %zu cached answers) -> %s\n", st.records,
              st.http_attempts, st.cached, eval::judge_file(cfg).c_str());
  for (const auto& [kind, n] : st.failures)
    std::printf("[flas eval]   %zu questions failed: %s\n", n, std::string(eval::judge::to_string(kind)).c_str());
}

void run_report(const EvalArgs& a) {
  const auto cfg = eval::load_eval_config(a.config);
  const auto rows = eval::load_scored_rows(eval::scores_file(cfg));
  const auto files = eval::write_report(rows, cfg.out_dir, "flas eval: " + cfg.model.filename().string(), !a.no_plots);
  if (std::filesystem::exists(eval::judge_file(cfg))) {
    std::size_t dropped = 0;
    const auto judged = eval::load_judged_rows(eval::judge_file(cfg), dropped);
    const auto summary = eval::summarise(eval::metric_samples(eval::rows_at_chosen_factors(judged, eval::select_factors(judged))));
    eval::write_text_atomically(cfg.out_dir / "judge_summary.md",
                                "# Judge scores at each concept's chosen factor (report half)\n\n" +
                                    eval::summary_markdown(summary) + "\n" + std::to_string(dropped) +
                                    " generations had no harmonic mean (a dropped or failed rating) and are left out.\n");
    eval::write_text_atomically(cfg.out_dir / "judge_summary.csv", eval::summary_csv(summary));
    std::printf("[flas eval] judge summary -> %s\n", (cfg.out_dir / "judge_summary.md").c_str());
  }
  for (const auto& f : files.written) std::printf("[flas eval] wrote %s\n", f.c_str());
}
}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Evaluate steering methods the AxBench way (generate, score, judge, report)");
  cmd->require_subcommand(1);
  auto* gen = cmd->add_subcommand("generate", "Generate every cell of the grid into <out>/generations.jsonl (resumes)");
  auto* score = cmd->add_subcommand("score", "Offline proxies (concept classifier, NLL, repetition, PMI) -> <out>/scores.jsonl");
  auto* judge = cmd->add_subcommand("judge", "Rate with an OpenAI-compatible judge (AxBench's questions) -> <out>/judge.jsonl");
  auto* report = cmd->add_subcommand("report", "Summary tables (Markdown, CSV) and plots from the scores");
  auto* all = cmd->add_subcommand("run", "generate, score and report in one go");
  for (auto* sub : {gen, score, judge, report, all}) {
    sub->add_option("--config", a->config, "Evaluation config (JSON); see docs/evaluation.md")->required()->check(CLI::ExistingFile);
    sub->add_flag("--quiet", a->quiet, "No progress bar");
  }
  judge->add_option("--base-url", a->judge_base_url, "Judge endpoint (default: $FLAS_JUDGE_BASE_URL or OpenAI's)");
  judge->add_option("--model", a->judge_model, "Judge model (default: $FLAS_JUDGE_MODEL or gpt-4o-mini)");
  judge->add_option("--convention", a->convention, "axbench (T = 1.0, unparsable -> 0) or flas_paper (T = 0, unparsable dropped)")
      ->check(CLI::IsMember({"axbench", "flas_paper"}))->capture_default_str();
  judge->add_option("--workers", a->workers, "Concurrent requests")->capture_default_str();
  judge->add_option("--timeout", a->timeout, "Request timeout in seconds")->capture_default_str();
  judge->add_option("--templates", a->templates, "Folder of the rating templates")->capture_default_str();
  for (auto* sub : {gen, score, all}) add_backend_option(sub, a->backend);
  for (auto* sub : {report, all}) sub->add_flag("--no-plots", a->no_plots, "Skip the gnuplot figures");
  gen->callback([a] { run_generate(*a); });
  score->callback([a] { run_score(*a); });
  judge->callback([a] { run_judge(*a); });
  report->callback([a] { run_report(*a); });
  all->callback([a] {
    if (!run_generate(*a)) return;
    run_score(*a);
    run_report(*a);
  });
}

}  // namespace flas::cli
