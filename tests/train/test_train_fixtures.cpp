// The training maths against the references: every gemma2_<tag> set's grad.* (HF's mean cross-entropy
// and its gradient w.r.t. the output of decoder layer grad.layer) and every flas_<tag> set's train.*
// (the FLAS reference's lm_loss, div_loss, loss and the gradient of every flow parameter). Gradients:
// max|Δ|/max|ref| ≤ 1e-4 per tensor (DESIGN.md §4). Run on every host backend that is trainable.
#include <doctest/doctest.h>

#include <cmath>

#include "flas/backends/scalar_backward.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/train/flas_loss.hpp"
#include "flas/train/gemma2_backward.hpp"
#include "flas/flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

using namespace flas;
using flas::testing::max_rel_diff;

namespace {

constexpr double grad_tol = 1e-4;

double scalar_of(const Tensor& t) { return element_as_double(t, 0); }

double rel(double got, double ref) { return std::abs(got - ref) / std::max(std::abs(ref), 1e-30); }

template <class B>
void check_gemma2_grad(const flas::testing::FixtureSet& set) {
  flas::testing::SetReport report(std::string("train gemma2 grad/") + B::name, set.tag);
  auto fx = io::SafeTensorsFile::open(set.file);
  if (!fx.contains("grad.loss")) return;
  auto model = gemma2::Model<B>::load(set.folder / ("gemma2-" + set.tag));
  const int layer = int(fx.get("grad.layer").data<std::int64_t>()[0]);
  const Tensor mask = fx.contains("grad.attention_mask") ? fx.get("grad.attention_mask") : Tensor{};
  const auto [loss, dh] =
      train::lm_loss_grad_wrt_layer_output(model, layer, fx.get("grad.input_ids"), fx.get("grad.labels"), mask);
  const double d_loss = rel(loss, scalar_of(fx.get("grad.loss")));
  INFO(set.tag << " grad.loss: " << loss << " vs " << scalar_of(fx.get("grad.loss")));
  CHECK(report.check(d_loss, grad_tol));
  const double d_grad = max_rel_diff(dh, fx.get("grad.dloss_dh"));
  INFO(set.tag << " grad.dloss_dh: " << d_grad);
  CHECK(report.check(d_grad, grad_tol));
  // The layer's output itself (the tape's starting point) matches HF's.
  const train::BatchLayout at = train::BatchLayout::of(dh.dim(0), dh.dim(1), mask);
  const auto h = train::base_prefix_forward(model, layer, fx.get("grad.input_ids"), at);
  CHECK(report.check(max_rel_diff(h, fx.get("grad.h_layer_out")), 1e-5));
}

// train.*: row i steers with concept row i (SPEC.md), the two rows are different concepts.
template <class B>
void check_flas_train(const flas::testing::FlasSet& fs, train::GradientStrategy strategy, const char* name) {
  flas::testing::SetReport report(std::string("train flas/") + B::name + "/" + name, fs.set.tag);
  auto fx = io::SafeTensorsFile::open(fs.set.file);
  if (!fx.contains("train.loss")) return;
  auto base = gemma2::Model<B>::load(fs.base_dir);
  auto flow = flas::testing::load_flow(base, fs.flow);
  train::TrainBatch batch;
  batch.input_ids = fx.get("train.input_ids");
  batch.attention_mask = fx.get("train.attention_mask");
  batch.labels = fx.get("train.labels");
  batch.concept_ids = fx.get("concept.input_ids");
  batch.concept_mask = fx.get("concept.attention_mask");
  for (std::int64_t i = 0; i < batch.input_ids.dim(0); ++i) batch.concept_of_row.push_back(i);
  batch.flowtime = float(scalar_of(fx.get("train.T")));
  batch.steps = int(fx.get("train.n_steps").data<std::int64_t>()[0]);
  const float div_weight = float(scalar_of(fx.get("train.div_weight")));

  const train::FlasLoss<B> loss(base, fs.layer, div_weight, strategy);
  auto grads = train::zero_flow_gradients(flow.weights());
  const auto parts = loss(flow, batch, &grads);
  for (const auto& [key, got] : {std::pair{"train.lm_loss", parts.lm_loss}, {"train.div_loss", parts.div_loss},
                                  {"train.loss", parts.loss}}) {
    INFO(fs.set.tag << " " << key << ": " << got << " vs " << scalar_of(fx.get(key)));
    CHECK(report.check(rel(got, scalar_of(fx.get(key))), grad_tol));
  }
  int compared = 0;
  field::for_each_flow_parameter(grads, [&](const std::string& param, Tensor& g) {
    const std::string key = "grad." + param;
    REQUIRE(fx.contains(key));
    const double d = max_rel_diff(g, fx.get(key));
    INFO(fs.set.tag << " " << key << ": " << d);
    CHECK(report.check(d, grad_tol));
    ++compared;
  });
  CHECK(compared > 0);
  // Without a gradient target: the same loss.
  const auto forward_only = loss(flow, batch, nullptr);
  CHECK(forward_only.loss == parts.loss);
}

}  // namespace

TEST_CASE_TEMPLATE("flas train.* fixtures: losses and every flow parameter's gradient", B, FLAS_HOST_BACKENDS) {
  if constexpr (TrainableBackend<B>) {
    const auto sets = flas::testing::FlasSet::all();
    REQUIRE(!sets.empty());
    for (const auto& s : sets) {
      check_flas_train<B>(s, train::GradientStrategy::direct, "direct");
      check_flas_train<B>(s, train::GradientStrategy::checkpointed, "checkpointed");
    }
  }
}

TEST_CASE_TEMPLATE("gemma2 grad.* fixtures: loss and dLoss/dh of the steering layer", B, FLAS_HOST_BACKENDS) {
  if constexpr (TrainableBackend<B>) {
    const auto sets = flas::testing::discover("gemma2_", "_fixtures.safetensors");
    REQUIRE(!sets.empty());
    for (const auto& set : sets) check_gemma2_grad<B>(set);
  }
}
