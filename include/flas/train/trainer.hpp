#pragma once
// The training loop: micro-batches with a flow time T ~ U[t_min, t_max] each, gradients accumulated
// over grad_accum micro-batches and averaged, clipped to a global norm, one AdamW step at the
// scheduled rate; validation every val_every steps with early stopping on its loss; a resumable state
// after every validation (and at the end). Generic over the loss: LossFn(flow, batch, grads*) returns
// LossParts and accumulates dLoss/dθ into grads (FlowWeights of F32 tensors) when given.
// Data parallel (options.comm with K ranks): every rank draws the same data order and flow times from
// the shared seed, takes its shard of each global batch, and the gradients are summed over ranks
// before the (identical) optimiser step; rank 0 alone prints and writes, every rank resumes from what
// it wrote (out_dir on a filesystem all ranks see). The loss must return its share of the global
// batch's gradient (FlasLoss::set_communicator).
#include <chrono>
#include <cstdio>
#include <functional>
#include <span>

#include "flas/distributed/data_parallel.hpp"
#include "flas/field/flow_checkpoint.hpp"
#include "flas/field/flow_weights.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/train/adamw.hpp"
#include "flas/train/lr_schedule.hpp"
#include "flas/train/optimizer_step.hpp"
#include "flas/train/train_state.hpp"

namespace flas::train {

struct TrainerOptions {
  std::int64_t steps = 100;  // optimiser steps
  std::size_t batch_size = 4;
  int grad_accum = 1;
  LrSchedule lr;
  AdamWOptions adam;
  double clip_norm = 1.0;
  float t_min = 0.5f, t_max = 2.0f;
  int euler_steps = 3;
  std::int64_t val_every = 0;  // 0: validate only at the end
  std::int64_t patience = 0;   // 0: no early stopping
  std::filesystem::path out_dir;  // empty: no checkpoints
  bool resume = false;
  std::uint64_t seed = 0;
  bool progress = true;
  std::int64_t stop_after = -1;  // tests: stop (as if killed) after this many steps of this run
  const distributed::Communicator* comm = nullptr;  // data parallel over its ranks; nullptr: one process
};

struct Validation {
  double loss = 0;  // what early stopping watches (lower is better)
  std::string text; // printed
};

struct TrainSummary {
  std::int64_t steps = 0;
  double last_loss = 0;
  Validation last_validation;
  bool stopped_early = false;
};

template <class Flow, class Batch, class LossFn>
class Trainer {
 public:
  using BatchMaker = std::function<Batch(std::span<const std::size_t>)>;
  using Validator = std::function<Validation(const Flow&)>;

  Trainer(Flow& flow, LossFn loss, BatchMaker make_batch, std::vector<std::size_t> train_rows, TrainerOptions o)
      : flow_(flow), loss_(std::move(loss)), make_batch_(std::move(make_batch)), rows_(std::move(train_rows)),
        o_(std::move(o)), comm_(o_.comm ? *o_.comm : distributed::single_process()), adam_(o_.adam) {
    FLAS_CHECK(rows_.size() >= o_.batch_size && o_.batch_size > 0, "trainer: ", rows_.size(),
               " training samples cannot fill a batch of ", o_.batch_size);
    FLAS_CHECK(o_.grad_accum >= 1 && o_.t_min <= o_.t_max && o_.t_min >= 0, "trainer: bad options (grad_accum ",
               o_.grad_accum, ", T range [", o_.t_min, ", ", o_.t_max, "])");
    FLAS_CHECK(o_.batch_size % std::size_t(comm_.size()) == 0, "trainer: a global batch of ", o_.batch_size,
               " rows cannot be split evenly over ", comm_.size(), " ranks");
    if (!o_.out_dir.empty() && comm_.is_root()) std::filesystem::create_directories(o_.out_dir);
    p_.rng.seed(o_.seed);
    new_epoch();
    p_.epoch = 0;
    if (o_.resume && !o_.out_dir.empty()) load_state();
    // Same seed, same initialiser: the ranks agree already; sending rank 0's flow makes it a fact.
    distributed::broadcast_flow_parameters(flow_.weights(), comm_);
  }

  const TrainProgress& progress() const { return p_; }

  TrainSummary run(const Validator& validate) {
    TrainSummary sum;
    auto grads = field::clone_flow_weights(flow_.weights());
    const auto t_start = std::chrono::steady_clock::now();
    const std::int64_t first = p_.step;
    std::int64_t tokens = 0, run_steps = 0;
    while (p_.step < o_.steps) {
      field::for_each_flow_parameter(grads, [](const std::string&, Tensor& g) { std::fill_n(g.data<float>(), g.numel(), 0.0f); });
      double loss = 0;
      for (int a = 0; a < o_.grad_accum; ++a) {
        const auto rows = next_rows();
        Batch b = make_batch_(distributed::shard_of(std::span<const std::size_t>(rows), comm_));
        b.flowtime = std::uniform_real_distribution<float>(o_.t_min, o_.t_max)(p_.rng);
        b.steps = o_.euler_steps;
        const auto parts = loss_(flow_, b, &grads);
        loss += parts.loss / o_.grad_accum;
        tokens += parts.tokens;
      }
      distributed::allreduce_flow_gradients(grads, comm_);
      const double lr = o_.lr.at(p_.step);
      const double norm = apply_flow_gradients(flow_.weights(), grads, adam_, lr, o_.clip_norm, o_.grad_accum);
      ++p_.step;
      ++run_steps;
      sum.last_loss = loss;
      if (o_.progress && comm_.is_root()) print_progress(loss, norm, lr, tokens, t_start, first);
      const bool last = p_.step == o_.steps;
      if ((o_.val_every > 0 && p_.step % o_.val_every == 0) || last) {
        sum.last_validation = validate(flow_);
        if (o_.progress && comm_.is_root())
          std::fprintf(stderr, "\n[flas train] step %lld: %s\n", (long long)p_.step, sum.last_validation.text.c_str());
        if (sum.last_validation.loss < p_.best_val) {
          p_.best_val = sum.last_validation.loss;
          p_.evals_without_improvement = 0;
          if (writes()) field::save_flow(o_.out_dir / "best_flow.safetensors", flow_.weights(), meta_);
        } else {
          ++p_.evals_without_improvement;
        }
        if (writes()) save_state();
        if (o_.patience > 0 && p_.evals_without_improvement >= o_.patience) {
          sum.stopped_early = true;
          break;
        }
      }
      if (o_.stop_after >= 0 && run_steps >= o_.stop_after) {
        if (writes()) save_state();
        break;
      }
    }
    sum.steps = p_.step;
    return sum;
  }

  void set_meta(field::FlowMeta m) { meta_ = std::move(m); }

 private:
  // Rank 0 writes checkpoints; the others would race it for the same files.
  bool writes() const { return !o_.out_dir.empty() && comm_.is_root(); }

  void new_epoch() {
    p_.order = rows_;
    std::shuffle(p_.order.begin(), p_.order.end(), p_.rng);
    p_.cursor = 0;
    ++p_.epoch;
  }
  // The next batch_size rows; the last incomplete batch of an epoch is dropped (drop_last).
  std::vector<std::size_t> next_rows() {
    if (std::size_t(p_.cursor) + o_.batch_size > p_.order.size()) new_epoch();
    std::vector<std::size_t> out(p_.order.begin() + p_.cursor, p_.order.begin() + p_.cursor + std::ptrdiff_t(o_.batch_size));
    p_.cursor += std::int64_t(o_.batch_size);
    return out;
  }

  void save_state() {
    commit_state_folder(o_.out_dir, p_.step, [&](const std::filesystem::path& dir) {
      std::vector<std::pair<std::string, Tensor>> params, m, v;
      field::for_each_flow_parameter(flow_.weights(), [&](const std::string& n, Tensor& t) {
        params.emplace_back(n, t);
        m.emplace_back(n, moment_or_zero(adam_.first_moments(), n, t));
        v.emplace_back(n, moment_or_zero(adam_.second_moments(), n, t));
      });
      io::save_safetensors(dir / "flow.safetensors", params);
      io::save_safetensors(dir / "adam_m.safetensors", m);
      io::save_safetensors(dir / "adam_v.safetensors", v);
      auto j = progress_to_json(p_);
      j["adam_steps"] = adam_.steps_taken();
      write_text_atomically(dir / "state.json", j.dump() + "\n");
    });
  }

  void load_state() {
    const auto dir = latest_state_folder(o_.out_dir);
    if (dir.empty()) return;  // nothing to resume: a fresh run
    const auto where = (dir / "state.json").string();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text(dir / "state.json"));
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": not valid JSON (", e.what(), ")");
    }
    p_ = progress_from_json(j, where);
    check_resumed_position(where);
    const auto& adam_steps = j.contains("adam_steps") ? j["adam_steps"] : nlohmann::json(p_.step);
    if (!adam_steps.is_number_integer() || adam_steps.get<std::int64_t>() < 0)
      fail(where, ": field 'adam_steps' must be a non-negative integer, found ", adam_steps.dump());
    adam_.set_steps_taken(adam_steps.get<std::int64_t>());
    const auto params = io::SafeTensorsFile::open(dir / "flow.safetensors");
    const auto m = io::SafeTensorsFile::open(dir / "adam_m.safetensors");
    const auto v = io::SafeTensorsFile::open(dir / "adam_v.safetensors");
    field::for_each_flow_parameter(flow_.weights(), [&](const std::string& n, Tensor& t) {
      t = clone(params.get(n, DType::F32, t.shape()));
      adam_.first_moments()[n] = clone(m.get(n, DType::F32, t.shape()));
      adam_.second_moments()[n] = clone(v.get(n, DType::F32, t.shape()));
    });
    if (o_.progress && comm_.is_root()) std::fprintf(stderr, "[flas train] resumed from %s at step %lld\n", dir.string().c_str(), (long long)p_.step);
  }

  // The saved data order must be an order of this run's training rows, and the cursor inside it:
  // the batch maker indexes the dataset with these rows.
  void check_resumed_position(const std::string& where) const {
    auto saved = p_.order, ours = rows_;
    std::sort(saved.begin(), saved.end());
    std::sort(ours.begin(), ours.end());
    if (saved != ours)
      fail(where, ": the saved data order (", p_.order.size(), " rows) is not an order of this run's ", rows_.size(),
           " training rows: was the training data or the split changed since the state was written?");
    if (p_.cursor > std::int64_t(p_.order.size()))
      fail(where, ": cursor ", p_.cursor, " is past the end of the data order (", p_.order.size(), " rows)");
  }

  static Tensor moment_or_zero(std::map<std::string, Tensor>& store, const std::string& n, const Tensor& like) {
    auto it = store.find(n);
    return it == store.end() ? zeros(like.shape(), DType::F32) : it->second;
  }

  void print_progress(double loss, double norm, double lr, std::int64_t tokens,
                      std::chrono::steady_clock::time_point t0, std::int64_t first) const {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double per_step = secs / double(std::max<std::int64_t>(p_.step - first, 1));
    const double eta = per_step * double(o_.steps - p_.step);
    const int width = 24, filled = int(double(width) * double(p_.step) / double(std::max<std::int64_t>(o_.steps, 1)));
    std::fprintf(stderr, "\r[%s%s] step %lld/%lld  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s  ETA %.0fs   ",
                 std::string(std::size_t(filled), '#').c_str(), std::string(std::size_t(width - filled), '.').c_str(),
                 (long long)p_.step, (long long)o_.steps, loss, norm, lr, double(tokens) / std::max(secs, 1e-9), eta);
  }

  Flow& flow_;
  LossFn loss_;
  BatchMaker make_batch_;
  std::vector<std::size_t> rows_;
  TrainerOptions o_;
  const distributed::Communicator& comm_;
  AdamW adam_;
  TrainProgress p_;
  field::FlowMeta meta_;
};

}  // namespace flas::train
