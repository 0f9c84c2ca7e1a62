// flas train: learn a FLAS flow for a base model on AxBench rows; checkpoints, resume, early stopping.
// Under an MPI launcher (`mpirun -np K flas train ...`) it trains data parallel over the K ranks.
#include <cstdio>
#include <memory>

#include "backend_choice.hpp"
#include "commands.hpp"
#include "flas/train/train_run.hpp"
#include "launch_communicator.hpp"

namespace flas::cli {

namespace {
// Training needs the backward ops; the CPU backend trains once it has them, the scalar one always can.
using TrainBackend = std::conditional_t<TrainableBackend<HostBackend>, HostBackend, ScalarBackend<float>>;

struct TrainArgs {
  train::TrainRecipe recipe;
  std::string model_dir, out_dir = "flow-out";
  std::vector<std::string> data;
  std::string backend;
  bool xavier = false;
};

void train_and_report(TrainArgs& a) {
  const auto r = with_backend(a.backend, [&]<class B>(std::type_identity<B>) {
    using Trained = std::conditional_t<std::is_same_v<B, HostBackend>, TrainBackend, B>;
    return train::train_flow<Trained>(a.recipe);
  });
  if (a.recipe.comm && !a.recipe.comm->is_root()) return;
  std::printf("[flas train] done: %lld steps%s; held-in validation LM loss %.4f at T = 1, %.4f at T = 0; held-out "
              "concepts: LM loss %.4f at T = 1, %.4f at T = 0; flow: %s\n",
              (long long)r.steps, r.stopped_early ? " (early stop)" : "", r.last_validation.loss_on,
              r.last_validation.loss_off, r.held_out_on, r.held_out_off, r.flow_file.string().c_str());
}

void run_train(TrainArgs a) {
  a.recipe.model_dir = a.model_dir;
  a.recipe.out_dir = a.out_dir;
  a.recipe.data.assign(a.data.begin(), a.data.end());
  a.recipe.from_base_layer = !a.xavier;
  with_launch_communicator([&](const distributed::Communicator& comm) {
    a.recipe.comm = comm.size() > 1 ? &comm : nullptr;
    train_and_report(a);
  });
}
}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a FLAS flow on AxBench rows (positive rows; concept = output_concept)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--data", a->data, "AxBench training files (JSON Lines)")->required();
  cmd->add_option("--layer", a->recipe.layer, "Steering layer L")->required();
  cmd->add_option("--blocks", a->recipe.blocks, "Flow blocks")->capture_default_str();
  cmd->add_option("--steps", a->recipe.steps, "Optimiser steps")->capture_default_str();
  cmd->add_option("--batch-size", a->recipe.batch_size, "Rows per micro-batch")->capture_default_str();
  cmd->add_option("--grad-accum", a->recipe.grad_accum, "Micro-batches per optimiser step")->capture_default_str();
  cmd->add_option("--lr", a->recipe.lr, "Peak learning rate (AdamW, weight decay 0.01)")->capture_default_str();
  cmd->add_option("--warmup", a->recipe.warmup, "Linear warmup steps before the cosine decay")->capture_default_str();
  cmd->add_option("--t-min", a->recipe.t_min, "Smallest flow time sampled per batch")->capture_default_str();
  cmd->add_option("--t-max", a->recipe.t_max, "Largest flow time sampled per batch")->capture_default_str();
  cmd->add_option("--euler-steps", a->recipe.euler_steps, "Euler steps N")->capture_default_str();
  cmd->add_option("--div-weight", a->recipe.div_weight, "Weight of the diversity loss")->capture_default_str();
  cmd->add_option("--val-every", a->recipe.val_every, "Validate (and save a resumable state) every K steps; 0 = at the end")->capture_default_str();
  cmd->add_option("--patience", a->recipe.patience, "Stop after P validations without improvement; 0 = never")->capture_default_str();
  cmd->add_option("--max-len", a->recipe.max_len, "Longest prompt + response in tokens")->capture_default_str();
  cmd->add_option("--held-out-concepts", a->recipe.held_out_concepts, "Whole concepts kept out of training")->capture_default_str();
  cmd->add_option("--held-out-concept", a->recipe.held_out_named, "Keep out this concept (its text; repeatable) instead of a random draw");
  cmd->add_option("--val-samples", a->recipe.val_samples, "Validation rows (at most a tenth of the rest)")->capture_default_str();
  cmd->add_option("--out", a->out_dir, "Output folder: flow.safetensors, best_flow.safetensors, training state")->capture_default_str();
  cmd->add_flag("--resume", a->recipe.resume, "Continue from the latest state in --out");
  cmd->add_flag("--checkpointed", a->recipe.checkpointed, "Recompute each Euler step in backward (less memory)");
  cmd->add_flag("--bf16-frozen-forward", a->recipe.bf16_frozen_forward,
                "cpu backend, bf16 checkpoints: the frozen forward (layers 0..L, concept encoder) with bf16 "
                "activation products (faster; moves the gradient slightly: docs/performance.md)");
  cmd->add_flag("--xavier", a->xavier, "Xavier-initialise the flow instead of copying layer L");
  add_backend_option(cmd, a->backend);
  cmd->add_option("--seed", a->recipe.seed, "Seed: splits, data order, flow times, initialisation")->capture_default_str();
  cmd->callback([a] { run_train(*a); });
}

}  // namespace flas::cli
