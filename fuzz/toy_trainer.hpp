#pragma once
// A trainer small enough to run inside a fuzz target: the tests' toy flow (tests/support/toy_flow.hpp),
// a quadratic loss, and a complete state folder it wrote.
#include <filesystem>
#include <vector>

#include "flas/train/trainer.hpp"
#include "support/toy_flow.hpp"

namespace flas::fuzz {

using test::ToyBatch;
using test::ToyFlow;
using test::ToyParts;
using test::toy_flow;

// L = ½ Σ (w − T)², gradient w − T.
struct ToyLoss {
  ToyParts operator()(const ToyFlow&, const ToyBatch& b, field::FlowWeights* grads) const {
    if (grads)
      field::for_each_flow_parameter(*grads, [&](const std::string&, Tensor& g) {
        for (std::int64_t k = 0; k < g.numel(); ++k) g.data<float>()[k] += 0.5f - b.flowtime;
      });
    return {0, 0, 1.0, std::int64_t(b.rows.size())};
  }
};

inline std::vector<std::size_t> toy_rows() { return {0, 1, 2, 3, 4, 5, 6}; }

inline train::TrainerOptions toy_options(const std::filesystem::path& dir) {
  train::TrainerOptions o;
  o.steps = 3;
  o.batch_size = 2;
  o.lr = {0.05, 1, 3};
  o.out_dir = dir;
  o.seed = 5;
  o.progress = false;
  return o;
}

// Trains 3 steps into `dir` once (state-3 and `latest`), then restores those files on every call.
inline void write_toy_state_folder(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  static const fs::path pristine = [&] {
    const fs::path p = dir.parent_path() / "pristine-state";
    fs::remove_all(p);
    ToyFlow flow = toy_flow();
    train::Trainer<ToyFlow, ToyBatch, ToyLoss> trainer(flow, ToyLoss{}, [](std::span<const std::size_t> rows) {
      return ToyBatch{{rows.begin(), rows.end()}};
    }, toy_rows(), toy_options(p));
    trainer.run([](const ToyFlow&) { return train::Validation{}; });
    return p;
  }();
  fs::remove_all(dir);
  fs::copy(pristine, dir, fs::copy_options::recursive);
}

}  // namespace flas::fuzz
