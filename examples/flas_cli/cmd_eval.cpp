// flas eval: the AxBench-style steering evaluation (include/flas/eval): generate the grid, score it,
// report it. Each step reads and writes files under the config's "out" folder and resumes.
#include <cstdio>

#include "commands.hpp"
#include "flas/eval/generate_run.hpp"

namespace flas::cli {

namespace {
struct EvalArgs {
  std::string config;
  bool quiet = false;
};

void run_generate(const EvalArgs& a) {
  const auto cfg = eval::load_eval_config(a.config);
  const auto st = eval::generate_run<HostBackend>(cfg, !a.quiet);
  std::printf("[flas eval] %zu generations (%zu new, %zu already there) in %.1f s -> %s\n", st.cells, st.generated,
              st.already_done, st.seconds, cfg.generations_file().c_str());
}
}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Evaluate steering methods the AxBench way (generate, score, report)");
  cmd->require_subcommand(1);
  auto* gen = cmd->add_subcommand("generate", "Generate every cell of the grid (resumes)");
  for (auto* sub : {gen}) {
    sub->add_option("--config", a->config, "Evaluation config (JSON); see docs/evaluation.md")->required()->check(CLI::ExistingFile);
    sub->add_flag("--quiet", a->quiet, "No progress bar");
  }
  gen->callback([a] { run_generate(*a); });
}

}  // namespace flas::cli
