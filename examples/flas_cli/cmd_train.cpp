// flas train: learn a FLAS flow for a base model on AxBench rows; checkpoints, resume, early stopping.
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "flas/core/backward.hpp"
#include "flas/field/flow_init.hpp"
#include "flas/io/tokenizer.hpp"
#include "flas/train/axbench_data.hpp"
#include "flas/train/collate.hpp"
#include "flas/train/flas_loss.hpp"
#include "flas/train/trainer.hpp"

namespace flas::cli {

namespace {
// Training needs the backward ops; the CPU backend trains once it has them, the scalar one always can.
using TrainBackend = std::conditional_t<TrainableBackend<HostBackend>, HostBackend, ScalarBackend<float>>;

struct TrainArgs {
  std::string model_dir, out_dir = "flow-out";
  std::vector<std::string> data, held_out_named;
  int layer = -1, blocks = 1, euler_steps = 3, grad_accum = 1, held_out_concepts = 2;
  std::int64_t steps = 200, batch_size = 4, val_every = 50, patience = 0, warmup = 20, max_len = 128, val_samples = 64;
  double lr = 5e-5, div_weight = 0.1;
  float t_min = 0.5f, t_max = 2.0f;
  std::uint64_t seed = 0;
  bool resume = false, checkpointed = false, xavier = false;
};

// Token-weighted mean LM loss of `rows` at flow time T, in batches.
double mean_lm_loss(const train::FlasLoss<TrainBackend>& loss, const field::FlasFlow<TrainBackend>& flow,
                    const std::vector<train::TokenisedSample>& tokenised, const std::vector<std::size_t>& rows,
                    const io::Tokenizer& tok, const std::vector<std::string>& concepts, const train::CollateOptions& co,
                    std::size_t batch, float T, int steps) {
  double sum = 0;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < rows.size(); i += batch) {
    std::vector<const train::TokenisedSample*> ptrs;
    for (std::size_t j = i; j < std::min(rows.size(), i + batch); ++j) ptrs.push_back(&tokenised[rows[j]]);
    auto b = train::collate<train::TrainBatch>(ptrs, tok, concepts, co);
    b.flowtime = T;
    b.steps = steps;
    const auto p = loss(flow, b, nullptr);
    sum += p.lm_loss * double(p.tokens);
    n += p.tokens;
  }
  return n ? sum / double(n) : 0.0;
}

void run_train(const TrainArgs& a) {
  FLAS_CHECK(a.layer >= 0, "--layer is required (the decoder layer whose output the flow steers)");
  FLAS_CHECK(!a.data.empty(), "--data: give at least one AxBench JSON Lines file");
  auto base = gemma2::Model<TrainBackend>::load(a.model_dir);
  const auto tok = io::Tokenizer::load(a.model_dir);
  std::vector<std::filesystem::path> files(a.data.begin(), a.data.end());
  const auto data = train::load_axbench(files);
  const auto split = train::split_dataset(data, std::size_t(a.held_out_concepts), std::size_t(a.val_samples), a.seed,
                                          a.held_out_named);
  train::CollateOptions co{a.max_len, condition::max_concept_tokens, base.config().bos_token_id, base.config().pad_token_id};
  std::vector<train::TokenisedSample> tokenised;
  for (const auto& s : data.samples) tokenised.push_back(train::tokenise_sample(tok, s, co));
  auto keep = [&](std::vector<std::size_t> rows) {
    std::erase_if(rows, [&](std::size_t i) { return !train::has_response(tokenised[i]); });
    return rows;
  };
  const auto train_rows = keep(split.train), val_rows = keep(split.validation), held_rows = keep(split.held_out);
  std::fprintf(stderr, "[flas train] %s backend; %zu concepts (%zu held out); %zu train / %zu validation / %zu held-out rows\n",
               TrainBackend::name, data.concepts.size(), split.held_out_concepts.size(), train_rows.size(),
               val_rows.size(), held_rows.size());

  field::FlowInit init{a.blocks, {}, !a.xavier, 0.1f, a.seed};
  field::FlasFlow<TrainBackend> flow(base.config(), base.inv_freq(),
                                     field::init_flow(base.config(), base.weights(), a.layer, init));
  train::FlasLoss<TrainBackend> loss(base, a.layer, float(a.div_weight),
                                     a.checkpointed ? train::GradientStrategy::checkpointed : train::GradientStrategy::direct);
  train::TrainerOptions o;
  o.steps = a.steps;
  o.batch_size = std::size_t(a.batch_size);
  o.grad_accum = a.grad_accum;
  o.lr = {a.lr, a.warmup, a.steps};
  o.t_min = a.t_min;
  o.t_max = a.t_max;
  o.euler_steps = a.euler_steps;
  o.val_every = a.val_every;
  o.patience = a.patience;
  o.out_dir = a.out_dir;
  o.resume = a.resume;
  o.seed = a.seed;
  auto make = [&](std::span<const std::size_t> rows) {
    std::vector<const train::TokenisedSample*> ptrs;
    for (auto r : rows) ptrs.push_back(&tokenised[r]);
    return train::collate<train::TrainBatch>(ptrs, tok, data.concepts, co);
  };
  auto validate = [&](const field::FlasFlow<TrainBackend>& f) {
    const double on = mean_lm_loss(loss, f, tokenised, val_rows, tok, data.concepts, co, std::size_t(a.batch_size), 1.0f, a.euler_steps);
    const double off = mean_lm_loss(loss, f, tokenised, val_rows, tok, data.concepts, co, std::size_t(a.batch_size), 0.0f, a.euler_steps);
    char text[160];
    std::snprintf(text, sizeof text, "validation LM loss %.4f at T = 1, %.4f at T = 0", on, off);
    return train::Validation{on, text};
  };
  train::Trainer<field::FlasFlow<TrainBackend>, train::TrainBatch, train::FlasLoss<TrainBackend>> trainer(
      flow, loss, make, train_rows, o);
  field::FlowMeta meta{a.layer, a.euler_steps, 2.0f, "euler", 2};
  trainer.set_meta(meta);
  const auto sum = trainer.run(validate);
  field::save_flow(std::filesystem::path(a.out_dir) / "flow.safetensors", flow.weights(), meta);
  const double ho_on = mean_lm_loss(loss, flow, tokenised, held_rows, tok, data.concepts, co, std::size_t(a.batch_size), 1.0f, a.euler_steps);
  const double ho_off = mean_lm_loss(loss, flow, tokenised, held_rows, tok, data.concepts, co, std::size_t(a.batch_size), 0.0f, a.euler_steps);
  std::printf("[flas train] done: %lld steps%s; held-in %s; held-out concepts: LM loss %.4f at T = 1, %.4f at T = 0; flow: %s\n",
              (long long)sum.steps, sum.stopped_early ? " (early stop)" : "", sum.last_validation.text.c_str(), ho_on,
              ho_off, (std::filesystem::path(a.out_dir) / "flow.safetensors").string().c_str());
}
}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a FLAS flow on AxBench rows (positive rows; concept = output_concept)");
  cmd->add_option("--model", a->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--data", a->data, "AxBench training files (JSON Lines)")->required();
  cmd->add_option("--layer", a->layer, "Steering layer L")->required();
  cmd->add_option("--blocks", a->blocks, "Flow blocks")->capture_default_str();
  cmd->add_option("--steps", a->steps, "Optimiser steps")->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Rows per micro-batch")->capture_default_str();
  cmd->add_option("--grad-accum", a->grad_accum, "Micro-batches per optimiser step")->capture_default_str();
  cmd->add_option("--lr", a->lr, "Peak learning rate (AdamW, weight decay 0.01)")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "Linear warmup steps before the cosine decay")->capture_default_str();
  cmd->add_option("--t-min", a->t_min, "Smallest flow time sampled per batch")->capture_default_str();
  cmd->add_option("--t-max", a->t_max, "Largest flow time sampled per batch")->capture_default_str();
  cmd->add_option("--euler-steps", a->euler_steps, "Euler steps N")->capture_default_str();
  cmd->add_option("--div-weight", a->div_weight, "Weight of the diversity loss")->capture_default_str();
  cmd->add_option("--val-every", a->val_every, "Validate (and save a resumable state) every K steps; 0 = at the end")->capture_default_str();
  cmd->add_option("--patience", a->patience, "Stop after P validations without improvement; 0 = never")->capture_default_str();
  cmd->add_option("--max-len", a->max_len, "Longest prompt + response in tokens")->capture_default_str();
  cmd->add_option("--held-out-concepts", a->held_out_concepts, "Whole concepts kept out of training")->capture_default_str();
  cmd->add_option("--held-out-concept", a->held_out_named, "Keep out this concept (its text; repeatable) instead of a random draw");
  cmd->add_option("--val-samples", a->val_samples, "Validation rows (at most a tenth of the rest)")->capture_default_str();
  cmd->add_option("--out", a->out_dir, "Output folder: flow.safetensors, best_flow.safetensors, training state")->capture_default_str();
  cmd->add_flag("--resume", a->resume, "Continue from the latest state in --out");
  cmd->add_flag("--checkpointed", a->checkpointed, "Recompute each Euler step in backward (less memory)");
  cmd->add_flag("--xavier", a->xavier, "Xavier-initialise the flow instead of copying layer L");
  cmd->add_option("--seed", a->seed, "Seed: splits, data order, flow times, initialisation")->capture_default_str();
  cmd->callback([a] { run_train(*a); });
}

}  // namespace flas::cli
