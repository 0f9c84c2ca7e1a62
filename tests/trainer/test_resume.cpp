// A run stopped at step k and resumed equals an uninterrupted run at step 2k, bit for bit: parameters,
// optimiser moments, data order and the flow-time draws all come back. A cheap loss keeps this fast;
// the real FLAS loss is exercised by the training tests and the CLI.
#include <doctest/doctest.h>

#include "flas/train/trainer.hpp"
#include "support/compare.hpp"
#include "support/toy_flow.hpp"

using namespace flas;

namespace {
using test::ToyBatch;
using test::ToyFlow;
using test::ToyParts;
using test::toy_flow;

// L = ½ Σ (w − T·(1 + row))², the rows and T drawn by the trainer.
struct ToyLoss {
  ToyParts operator()(const ToyFlow& f, const ToyBatch& b, field::FlowWeights* grads) const {
    ToyParts p;
    double target = 0;
    for (auto r : b.rows) target += double(b.flowtime) * (1.0 + double(r));
    target /= double(b.rows.size());
    std::vector<Tensor*> gs;
    if (grads) field::for_each_flow_parameter(*grads, [&](const std::string&, Tensor& g) { gs.push_back(&g); });
    std::size_t i = 0;
    auto& w = const_cast<field::FlowWeights&>(f.w);
    field::for_each_flow_parameter(w, [&](const std::string&, Tensor& t) {
      for (std::int64_t k = 0; k < t.numel(); ++k) {
        const double d = double(t.data<float>()[k]) - target;
        p.loss += 0.5 * d * d;
        if (grads) gs[i]->data<float>()[k] += float(d);
      }
      ++i;
    });
    p.lm_loss = p.loss;
    p.tokens = std::int64_t(b.rows.size());
    return p;
  }
};

train::TrainerOptions options(const std::filesystem::path& dir) {
  train::TrainerOptions o;
  o.steps = 12;
  o.batch_size = 3;
  o.grad_accum = 2;
  o.lr = {0.05, 2, 12};
  o.val_every = 4;
  o.out_dir = dir;
  o.seed = 11;
  o.progress = false;
  return o;
}

Tensor flat(ToyFlow& f) {
  std::vector<float> all;
  field::for_each_flow_parameter(f.w, [&](const std::string&, Tensor& t) {
    all.insert(all.end(), t.data<float>(), t.data<float>() + t.numel());
  });
  Tensor out = Tensor::empty({std::int64_t(all.size())}, DType::F32);
  std::copy(all.begin(), all.end(), out.data<float>());
  return out;
}
}  // namespace

TEST_CASE("a run stopped at step k and resumed equals an uninterrupted run") {
  namespace fs = std::filesystem;
  const auto base = fs::temp_directory_path() / ("flas_resume_" + std::to_string(::getpid()));
  fs::remove_all(base);
  std::vector<std::size_t> rows(10);
  std::iota(rows.begin(), rows.end(), 0);
  auto make = [](std::span<const std::size_t> r) { return ToyBatch{{r.begin(), r.end()}}; };
  auto validate = [](const ToyFlow&) { return train::Validation{0.0, "toy"}; };

  ToyFlow whole = toy_flow();
  train::Trainer<ToyFlow, ToyBatch, ToyLoss> t1(whole, ToyLoss{}, make, rows, options(base / "whole"));
  const auto s1 = t1.run(validate);
  CHECK(s1.steps == 12);

  ToyFlow first = toy_flow();
  auto o = options(base / "split");
  o.stop_after = 6;  // killed after 6 steps (mid-way between two validations)
  train::Trainer<ToyFlow, ToyBatch, ToyLoss> t2(first, ToyLoss{}, make, rows, o);
  CHECK(t2.run(validate).steps == 6);

  ToyFlow second = toy_flow();  // a new process: fresh parameters, everything from the state folder
  o.stop_after = -1;
  o.resume = true;
  train::Trainer<ToyFlow, ToyBatch, ToyLoss> t3(second, ToyLoss{}, make, rows, o);
  CHECK(t3.progress().step == 6);
  CHECK(t3.run(validate).steps == 12);
  CHECK(flas::testing::max_rel_diff(flat(second), flat(whole)) == 0);
  CHECK(flas::testing::max_rel_diff(flat(second), zeros({flat(whole).numel()})) > 0);  // it did learn something
  CHECK(fs::exists(base / "split" / "latest"));
  fs::remove_all(base);
}
