#pragma once
// One whole training run as a library call: load the base model and AxBench rows, split them (held-out
// concepts, validation rows), build a fresh flow from a recipe (blocks, parts on/off, conditioning,
// initialisation), train it with the Trainer (checkpoints, resume, early stopping) and save it with its
// JSON. `flas train` and the ablation runner (include/flas/ablate) are both thin callers of this.
// With a communicator (recipe.comm, e.g. MPI under `mpirun -np K`) it trains data parallel: each rank
// runs this same call, takes its shard of every global batch and of the validation rows, and rank 0
// writes the outputs; the result equals one process with the same global batch (docs/distributed.md).
#include <chrono>
#include <cstdio>
#include <functional>
#include <span>

#include "flas/core/backward.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/field/flow_init.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/train/axbench_data.hpp"
#include "flas/train/collate.hpp"
#include "flas/train/flas_loss.hpp"
#include "flas/train/trainer.hpp"

namespace flas::train {

struct TrainRecipe {
  std::filesystem::path model_dir, out_dir = "flow-out";
  std::vector<std::filesystem::path> data;   // AxBench JSON Lines
  std::vector<std::string> held_out_named;   // concept texts kept out (else a random draw)
  int layer = -1, blocks = 1, euler_steps = 3, grad_accum = 1, held_out_concepts = 2;
  std::int64_t steps = 200, batch_size = 4, val_every = 50, patience = 0, warmup = 20, max_len = 128, val_samples = 64;
  double lr = 5e-5, div_weight = 0.1;
  float t_min = 0.5f, t_max = 2.0f;
  std::uint64_t seed = 0;
  bool resume = false, checkpointed = false, from_base_layer = true;
  bool bf16_frozen_forward = false;  // FlasLoss::set_bf16_frozen_forward: base layers 0..L in bf16 products
  field::FlowSwitches switches;  // which parts the flow has, and how it is conditioned
  // What goes into the flow's JSON for inference: default T, solver, inference steps (0: euler_steps).
  float default_flowtime = 2.0f;
  std::string solver = "euler";
  int inference_steps = 0;
  bool progress = true;
  const distributed::Communicator* comm = nullptr;  // data parallel over its ranks; nullptr: one process
};

struct ValidationPoint {
  std::int64_t step = 0;
  double loss_on = 0, loss_off = 0;  // validation LM loss at T = 1 and T = 0
};

struct TrainReport {
  std::int64_t steps = 0;
  bool stopped_early = false;
  ValidationPoint last_validation;
  double held_out_on = 0, held_out_off = 0;  // LM loss of held-out concepts' rows at T = 1, T = 0
  std::size_t train_rows = 0, validation_rows = 0, held_out_rows = 0;
  double seconds = 0;  // this call's wall time (a resumed run counts only its own part)
  std::filesystem::path flow_file;
};

// Token-weighted mean LM loss of `all_rows` at flow time T, in batches; with K ranks each takes every
// K-th row and the sums are reduced, so every rank returns the same mean.
template <Backend B>
double mean_lm_loss(const FlasLoss<B>& loss, const field::FlasFlow<B>& flow, const std::vector<TokenisedSample>& tokenised,
                    const std::vector<std::size_t>& all_rows, const io::Tokenizer& tok, const std::vector<std::string>& concepts,
                    const CollateOptions& co, std::size_t batch, float T, int steps,
                    const distributed::Communicator& comm = distributed::single_process()) {
  const auto rows = distributed::strided_share(all_rows, comm);
  double sum = 0;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < rows.size(); i += batch) {
    std::vector<const TokenisedSample*> ptrs;
    for (std::size_t j = i; j < std::min(rows.size(), i + batch); ++j) ptrs.push_back(&tokenised[rows[j]]);
    auto b = collate<TrainBatch>(ptrs, tok, concepts, co);
    b.flowtime = T;
    b.steps = steps;
    const auto p = loss(flow, b, nullptr);
    sum += p.lm_loss * double(p.tokens);
    n += p.tokens;
  }
  sum = comm.sum(sum);
  n = comm.sum(n);
  return n ? sum / double(n) : 0.0;
}

inline void check_recipe(const TrainRecipe& r) {
  FLAS_CHECK(r.layer >= 0, "training: the steering layer is required (--layer / 'layer')");
  FLAS_CHECK(!r.data.empty(), "training: give at least one AxBench JSON Lines file (--data / 'data')");
  FLAS_CHECK(r.blocks >= 1, "training: 'blocks' must be at least 1, got ", r.blocks);
  FLAS_CHECK(r.euler_steps >= 1, "training: Euler steps N must be at least 1, got ", r.euler_steps);
  FLAS_CHECK(r.steps >= 1 && r.batch_size >= 1, "training: 'steps' and 'batch_size' must be positive");
  FLAS_CHECK(r.lr > 0, "training: the learning rate must be positive, got ", r.lr);
  FLAS_CHECK(r.t_min >= 0 && r.t_min <= r.t_max, "training: flow-time range [", r.t_min, ", ", r.t_max, "] is not 0 <= t_min <= t_max");
  FLAS_CHECK(!(r.switches.cross_attn && r.switches.pooled), "training: choose cross-attention or pooled conditioning, not both");
}

// Trains a flow by `r`; `on_validation` sees every validation (e.g. to log a loss curve).
template <Backend B>
TrainReport train_flow(const TrainRecipe& r, const std::function<void(const ValidationPoint&)>& on_validation = {}) {
  check_recipe(r);
  const distributed::Communicator& comm = r.comm ? *r.comm : distributed::single_process();
  const bool root = comm.is_root();
  const auto t0 = std::chrono::steady_clock::now();
  auto base = gemma2::Model<B>::load(r.model_dir);
  FLAS_CHECK(r.layer < base.config().num_hidden_layers, r.model_dir.string(), ": steering layer ", r.layer,
             " does not exist in a model of ", base.config().num_hidden_layers, " layers");
  const auto tok = io::Tokenizer::load(r.model_dir);
  const auto data = load_axbench(r.data);
  const auto split = split_dataset(data, std::size_t(r.held_out_concepts), std::size_t(r.val_samples), r.seed, r.held_out_named);
  CollateOptions co{r.max_len, condition::max_concept_tokens, base.config().bos_token_id, base.config().pad_token_id};
  std::vector<TokenisedSample> tokenised;
  for (const auto& s : data.samples) tokenised.push_back(tokenise_sample(tok, s, co));
  auto keep = [&](std::vector<std::size_t> rows) {
    std::erase_if(rows, [&](std::size_t i) { return !has_response(tokenised[i]); });
    return rows;
  };
  const auto train_rows = keep(split.train), val_rows = keep(split.validation), held_rows = keep(split.held_out);
  if (r.progress && root)
    std::fprintf(stderr, "[flas train] %s backend, %d %s rank%s; %zu concepts (%zu held out); %zu train / %zu validation / %zu held-out rows\n",
                 B::name, comm.size(), comm.engine().c_str(), comm.size() == 1 ? "" : "s", data.concepts.size(),
                 split.held_out_concepts.size(), train_rows.size(), val_rows.size(), held_rows.size());

  field::FlowInit init{r.blocks, r.switches, r.from_base_layer, 0.1f, r.seed};
  field::FlasFlow<B> flow(base.config(), base.inv_freq(), field::init_flow(base.config(), base.weights(), r.layer, init));
  FlasLoss<B> loss(base, r.layer, float(r.div_weight), r.checkpointed ? GradientStrategy::checkpointed : GradientStrategy::direct);
  loss.set_communicator(comm);
  loss.set_bf16_frozen_forward(r.bf16_frozen_forward);
  TrainerOptions o;
  o.steps = r.steps;
  o.batch_size = std::size_t(r.batch_size);
  o.grad_accum = r.grad_accum;
  o.lr = {r.lr, r.warmup, r.steps};
  o.t_min = r.t_min;
  o.t_max = r.t_max;
  o.euler_steps = r.euler_steps;
  o.val_every = r.val_every;
  o.patience = r.patience;
  o.out_dir = r.out_dir;
  o.resume = r.resume;
  o.seed = r.seed;
  o.progress = r.progress;
  o.comm = &comm;
  auto make = [&](std::span<const std::size_t> rows) {
    std::vector<const TokenisedSample*> ptrs;
    for (auto i : rows) ptrs.push_back(&tokenised[i]);
    return collate<TrainBatch>(ptrs, tok, data.concepts, co);
  };
  const auto batch = std::size_t(r.batch_size);
  auto lm = [&](const field::FlasFlow<B>& f, const std::vector<std::size_t>& rows, float T) {
    return mean_lm_loss(loss, f, tokenised, rows, tok, data.concepts, co, batch, T, r.euler_steps, comm);
  };
  using TrainerType = Trainer<field::FlasFlow<B>, TrainBatch, FlasLoss<B>>;
  TrainerType* trainer_ptr = nullptr;
  TrainReport report;
  auto validate = [&](const field::FlasFlow<B>& f) {
    ValidationPoint v{trainer_ptr->progress().step, lm(f, val_rows, 1.0f), lm(f, val_rows, 0.0f)};
    report.last_validation = v;
    if (on_validation) on_validation(v);
    char text[160];
    std::snprintf(text, sizeof text, "validation LM loss %.4f at T = 1, %.4f at T = 0", v.loss_on, v.loss_off);
    return Validation{v.loss_on, text};
  };
  TrainerType trainer(flow, loss, make, train_rows, o);
  trainer_ptr = &trainer;
  const field::FlowMeta meta{r.layer, r.inference_steps > 0 ? r.inference_steps : r.euler_steps, r.default_flowtime, r.solver, 2};
  trainer.set_meta(meta);
  const auto sum = trainer.run(validate);
  report.flow_file = r.out_dir / "flow.safetensors";
  if (root) field::save_flow(report.flow_file, flow.weights(), meta);
  report.steps = sum.steps;
  report.stopped_early = sum.stopped_early;
  report.held_out_on = lm(flow, held_rows, 1.0f);
  report.held_out_off = lm(flow, held_rows, 0.0f);
  report.train_rows = train_rows.size();
  report.validation_rows = val_rows.size();
  report.held_out_rows = held_rows.size();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace flas::train
