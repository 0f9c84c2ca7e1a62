#pragma once
// Step 1 of an evaluation: generate every cell of the grid into <out>/generations.jsonl, resuming
// where an earlier run stopped. Loads the model, the flow (for "flas") and the DiffMean vectors (for
// "diffmean": read from the config's file, or computed from its concept_data at the steering layer and
// saved there, so later runs reuse them). With a communicator of K ranks, each rank generates its share
// of the batches and rank 0 merges them (generation_shards.hpp): the same records as one process.
#include <filesystem>
#include <optional>

#include "flas/distributed/communicator.hpp"
#include "flas/eval/diffmean.hpp"
#include "flas/eval/generation_shards.hpp"
#include "flas/eval/grid_runner.hpp"
#include "flas/eval/progress_bar.hpp"

namespace flas::eval {

struct GenerateRunStats {
  std::size_t cells = 0, already_done = 0, generated = 0;
  double seconds = 0;
};

template <Backend B>
DiffMeanVectors diffmean_for_run(const gemma2::Model<B>& model, const io::Tokenizer& tok, const EvalConfig& cfg,
                                 int layer) {
  const auto file = cfg.diffmean_file();
  if (std::filesystem::exists(file)) {
    auto v = load_diffmean(file);
    FLAS_CHECK(v.layer == layer, file.string(), ": DiffMean vectors of layer ", v.layer, ", the run steers at layer ",
               layer, " (delete the file to recompute)");
    return v;
  }
  FLAS_CHECK(!cfg.concept_data.empty(), file.string(), " does not exist and the config names no concept_data to compute it from");
  std::fprintf(stderr, "[flas eval] computing DiffMean vectors at layer %d from %zu files -> %s\n", layer,
               cfg.concept_data.size(), file.c_str());
  auto v = compute_diffmean(model, tok, load_labelled_rows(cfg.concept_data), DiffMeanOptions{layer, 64, 16});
  std::filesystem::create_directories(file.parent_path());
  save_diffmean(file, v);
  return v;
}

template <Backend B>
GenerateRunStats generate_run(const EvalConfig& cfg, bool show_progress = true,
                              const distributed::Communicator& comm = distributed::single_process()) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto model = gemma2::Model<B>::load(cfg.model);
  const auto tok = io::Tokenizer::load(cfg.model);
  const auto instructions = load_instructions(cfg);

  std::optional<field::FlasFlow<B>> flow;
  field::FlowMeta meta;
  if (!cfg.flow.empty()) {
    const auto meta_file = field::flow_meta_path(cfg.flow);
    FLAS_CHECK(std::filesystem::exists(meta_file), cfg.flow.string(), ": the flow's JSON ", meta_file.string(),
               " (layer, steps) is missing");
    meta = field::read_flow_meta(meta_file);
    flow.emplace(model.config(), model.inv_freq(), field::load_flow_weights(cfg.flow, model.config()));
  }
  std::optional<DiffMeanVectors> dm;
  if (cfg.factors.count("diffmean")) {
    const int layer = cfg.layer >= 0 ? cfg.layer : meta.layer;
    FLAS_CHECK(layer >= 0, "evaluation: DiffMean needs a layer: give 'layer' in the config or a flow");
    if (comm.is_root()) dm = diffmean_for_run(model, tok, cfg, layer);  // computed and saved once,
    comm.barrier();                                                       // then read by the others
    if (!comm.is_root()) dm = diffmean_for_run(model, tok, cfg, layer);
  }

  const auto plan = plan_grid(cfg, instructions);
  const auto file = cfg.generations_file();
  if (comm.is_root()) {  // what an earlier multi-rank run left in part files counts as done
    GenerationStore left(file);
    merge_generation_parts(left, plan, file);
  }
  comm.barrier();
  GenerationStore store(file);
  GenerateRunStats st;
  st.cells = count_cells(plan);
  for (const auto& b : plan)
    for (const auto& c : b.cells) st.already_done += store.has(c.key) ? 1 : 0;
  if (st.already_done && comm.is_root())
    std::fprintf(stderr, "[flas eval] resuming %s: %zu of %zu generations already there\n",
                 cfg.generations_file().c_str(), st.already_done, st.cells);
  GridRunner<B> runner(model, tok, cfg, flow ? &*flow : nullptr, meta, dm ? &*dm : nullptr);
  std::optional<ProgressBar> bar;
  if (comm.size() == 1) {
    if (show_progress) bar.emplace("[flas eval] generating", st.cells, st.already_done);
    run_grid(plan, store, runner, [&](const GridBatch&, std::size_t added) {
      st.generated += added;
      if (bar) bar->advance(added);
    });
  } else {
    const auto mine = batches_of_rank(plan, store, comm);
    if (show_progress && comm.is_root()) bar.emplace("[flas eval] generating (rank 0's share)", count_cells(mine), 0);
    GenerationStore part(generation_part_file(file, comm.rank()));
    run_grid(mine, part, runner, [&](const GridBatch&, std::size_t added) {
      if (bar) bar->advance(added);
    });
    comm.barrier();
    if (comm.is_root()) st.generated = merge_generation_parts(store, plan, file);
    st.generated = std::size_t(comm.sum(std::int64_t(st.generated)));
  }
  if (bar) bar->finish();
  st.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return st;
}

}  // namespace flas::eval
