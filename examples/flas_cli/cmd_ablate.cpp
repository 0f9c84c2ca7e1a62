// flas ablate: an ablation study (include/flas/ablate): train and evaluate every variant and seed of a
// config, resumably, then tables and plots. Under `mpirun -np K` rank r takes every K-th run (whole runs:
// each trains alone) and rank 0 writes the report once all are done; `--shard I/N` does the same for job
// arrays sharing one results folder, whose last finisher (or `report`) gathers them.
#include <cstdio>

#include "commands.hpp"
#include "launch_communicator.hpp"
#include "flas/ablate/ablation_report.hpp"
#include "flas/ablate/ablation_run.hpp"

namespace flas::cli {

namespace {
using TrainBackend = std::conditional_t<TrainableBackend<HostBackend>, HostBackend, ScalarBackend<float>>;

struct AblateArgs {
  std::string config, shard;
  bool quiet = false, no_plots = false;
};

// "I/N", or this process's rank and size under mpirun when not given.
ablate::RunOptions run_options(const AblateArgs& a, const distributed::Communicator& comm) {
  ablate::RunOptions o;
  o.progress = !a.quiet;
  o.shard = std::size_t(comm.rank());
  o.shards = std::size_t(comm.size());
  const std::string& s = a.shard;
  if (s.empty()) return o;
  FLAS_CHECK(comm.size() == 1, "--shard: not with mpirun (the ranks shard the runs already)");
  const auto slash = s.find('/');
  try {
    FLAS_CHECK(slash != std::string::npos, "");
    o.shard = std::stoul(s.substr(0, slash));
    o.shards = std::stoul(s.substr(slash + 1));
  } catch (const std::exception&) {
    fail("--shard: expected I/N (run every N-th run starting at I, 0 <= I < N), got '", s, "'");
  }
  FLAS_CHECK(o.shards >= 1 && o.shard < o.shards, "--shard: ", s, " is not 0 <= I < N");
  return o;
}

void report(const ablate::AblationConfig& c, const AblateArgs& a) {
  const auto rep = ablate::write_study_report(c, !a.no_plots);
  std::printf("[flas ablate] %zu finished runs%s\n", rep.runs,
              rep.missing ? (", " + std::to_string(rep.missing) + " not finished").c_str() : "");
  for (const auto& f : rep.written) std::printf("[flas ablate] wrote %s\n", f.c_str());
}

void list(const ablate::AblationConfig& c) {
  for (const auto& v : c.variants)
    for (auto seed : c.seeds) {
      const auto dir = ablate::run_dir(c, v, seed);
      const char* state = std::filesystem::exists(ablate::result_file(dir)) ? "done"
                          : std::filesystem::exists(dir / "train.json")     ? "trained, evaluating"
                          : std::filesystem::exists(dir / "train")          ? "training"
                                                                            : "not started";
      std::printf("%-40s seed %-4llu %-20s %s\n", v.name.c_str(), (unsigned long long)seed, state,
                  ablate::overrides_text(v.overrides).c_str());
    }
}
}  // namespace

void add_ablate(CLI::App& app) {
  auto a = std::make_shared<AblateArgs>();
  auto* cmd = app.add_subcommand("ablate", "Ablation studies: train and evaluate flow variants over seeds (docs/ablations.md)");
  cmd->require_subcommand(1);
  auto* run = cmd->add_subcommand("run", "Train and evaluate every run not yet done (resumes), then write the report");
  auto* rep = cmd->add_subcommand("report", "Tables (results.md/csv, runs.csv) and plots from the finished runs");
  auto* ls = cmd->add_subcommand("list", "Every variant and seed with its state");
  for (auto* sub : {run, rep, ls})
    sub->add_option("--config", a->config, "Ablation config (JSON); see docs/ablations.md")->required()->check(CLI::ExistingFile);
  run->add_option("--shard", a->shard, "I/N: only every N-th run from I (default: mpirun's rank/size, else all)");
  run->add_flag("--quiet", a->quiet, "No progress output");
  for (auto* sub : {run, rep}) sub->add_flag("--no-plots", a->no_plots, "Skip the gnuplot figures");
  run->callback([a] {
    with_launch_communicator([&](const distributed::Communicator& comm) {
      const auto c = ablate::load_ablation_config(a->config);
      const auto o = run_options(*a, comm);
      const auto st = ablate::run_study<TrainBackend, HostBackend>(c, o);
      std::printf("[flas ablate] %zu runs in the study; %s: %zu ran, %zu were done already%s, in %.1f s\n", st.runs,
                  comm.size() > 1 ? ("rank " + std::to_string(comm.rank())).c_str() : "this process", st.ran,
                  st.already_done,
                  st.other_shards ? (", " + std::to_string(st.other_shards) + " belong to other shards").c_str() : "",
                  st.seconds);
      comm.barrier();  // under mpirun: every rank's runs are done before rank 0 gathers them
      if (!comm.is_root()) return;
      // A whole study (one process, or all of mpirun's ranks, just synchronised) reports; one manual
      // --shard I/N of it reports only once the other shards' runs are there too.
      const bool manual_shard = comm.size() == 1 && o.shards > 1;
      if (!manual_shard || ablate::collect_results(c).size() == st.runs) report(c, *a);
    });
  });
  rep->callback([a] { report(ablate::load_ablation_config(a->config), *a); });
  ls->callback([a] { list(ablate::load_ablation_config(a->config)); });
}

}  // namespace flas::cli
