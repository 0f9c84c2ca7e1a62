// FlasLoss::set_bf16_frozen_forward: the frozen forward (base layers 0..L, the concept encoder) in bf16
// activation products, everything differentiated exact. Checked against the exact run: f32 weights are
// untouched (the reference fixtures' model is f32: their gradients cannot move), bf16 weights move the
// gradient by a measured amount, the mode never leaks past the frozen forward, and the scope restores
// what it found.
#include <doctest/doctest.h>

#include <map>

#include "flas/backends/cpu.hpp"
#include "flas/backends/cpu_backward.hpp"
#include "flas/backends/scalar.hpp"
#include "flas/core/precision_scope.hpp"
#include "flas/field/flow_init.hpp"
#include "support/compare.hpp"
#include "train_test_rig.hpp"

using namespace flas;
using flas::testing::max_rel_diff;
using Precision = CpuBackend::Precision;

namespace {

// Rows of `seq` ids: a prompt half (labels ignored) and a response half; rows alternate two concepts.
train::TrainBatch batch_for(std::int64_t rows, std::int64_t seq, std::int64_t vocab) {
  train::TrainBatch b;
  b.input_ids = Tensor::empty({rows, seq}, DType::I64);
  b.labels = Tensor::empty({rows, seq}, DType::I64);
  b.attention_mask = gemma2::Model<CpuBackend>::ones_u8(rows, seq);
  for (std::int64_t i = 0; i < rows * seq; ++i) {
    const std::int64_t id = 3 + (i * 37 + 11) % (vocab - 3);
    b.input_ids.data<std::int64_t>()[i] = id;
    b.labels.data<std::int64_t>()[i] = i % seq < seq / 2 ? -100 : id;
  }
  const std::int64_t Lc = 6;
  b.concept_ids = Tensor::empty({rows, Lc}, DType::I64);
  b.concept_mask = gemma2::Model<CpuBackend>::ones_u8(rows, Lc);
  for (std::int64_t r = 0; r < rows; ++r) {
    b.concept_of_row.push_back(r % 2);
    for (std::int64_t i = 0; i < Lc; ++i) b.concept_ids.data<std::int64_t>()[r * Lc + i] = i == 0 ? 2 : 3 + (7 * i + r % 2) % (vocab - 3);
  }
  b.flowtime = 1.5f;
  b.steps = 2;
  return b;
}

struct Run {
  train::LossParts parts;
  field::FlowWeights grads;
};

Run run(const gemma2::Model<CpuBackend>& base, int layer, const field::FlasFlow<CpuBackend>& flow,
        const train::TrainBatch& batch, bool bf16_frozen) {
  train::FlasLoss<CpuBackend> loss(base, layer, 0.1f);
  loss.set_bf16_frozen_forward(bf16_frozen);
  Run r{{}, train::zero_flow_gradients(flow.weights())};
  r.parts = loss(flow, batch, &r.grads);
  return r;
}

double max_grad_diff(const Run& a, const Run& b) {
  std::map<std::string, const Tensor*> mine;
  field::for_each_flow_parameter(a.grads, [&](const std::string& name, const Tensor& t) { mine[name] = &t; });
  double worst = 0;
  field::for_each_flow_parameter(b.grads, [&](const std::string& name, const Tensor& t) {
    REQUIRE(mine.count(name));
    worst = std::max(worst, max_rel_diff(t, *mine[name]));
  });
  return worst;
}

}  // namespace

TEST_CASE("Bf16ActivationsScope sets the cpu backend's mode and restores it; other backends ignore it") {
  REQUIRE(CpuBackend::precision() == Precision::exact);
  {
    Bf16ActivationsScope<CpuBackend> off(false);
    CHECK(CpuBackend::precision() == Precision::exact);
  }
  {
    Bf16ActivationsScope<CpuBackend> on(true);
    CHECK(CpuBackend::precision() == Precision::bf16_activations);
  }
  CHECK(CpuBackend::precision() == Precision::exact);
  CpuBackend::set_precision(Precision::bf16_activations);  // a caller that chose bf16 keeps it
  { Bf16ActivationsScope<CpuBackend> on(true); }
  CHECK(CpuBackend::precision() == Precision::bf16_activations);
  CpuBackend::set_precision(Precision::exact);
  static_assert(Bf16ActivationsScope<CpuBackend>::available());
  static_assert(!Bf16ActivationsScope<ScalarBackend<float>>::available());
  Bf16ActivationsScope<ScalarBackend<float>> ignored(true);
  CHECK(CpuBackend::precision() == Precision::exact);
}

TEST_CASE("f32 base weights: a bf16 frozen forward leaves loss and gradient bit-identical") {
  train_test::Rng rng(5);
  const auto c = train_test::tiny_config();
  const gemma2::Model<CpuBackend> base(c, train_test::random_base(c, rng));
  const int layer = 1;
  const field::FlasFlow<CpuBackend> flow(c, base.inv_freq(), train_test::random_flow(c, base.weights(), layer, {}, 1, rng));
  const auto batch = batch_for(3, 12, c.vocab_size);  // 36 rows of x: prompt-sized, the mode would apply
  const Run exact = run(base, layer, flow, batch, false), fast = run(base, layer, flow, batch, true);
  CHECK(fast.parts.loss == exact.parts.loss);
  CHECK(max_grad_diff(exact, fast) == 0.0);
  CHECK(CpuBackend::precision() == Precision::exact);
}

TEST_CASE("bf16 base weights (the bundled chat model): the frozen forward alone changes, by a measured amount") {
  const auto base = gemma2::Model<CpuBackend>::load(std::filesystem::path(FLAS_PROJECT_MODELS) / "tiny-gemma2-chat");
  const auto& c = base.config();
  const int layer = 3;
  const field::FlasFlow<CpuBackend> flow(c, base.inv_freq(),
                                         field::init_flow(c, base.weights(), layer, {1, {}, true, 0.1f, 3}));
  const auto batch = batch_for(4, 40, c.vocab_size);
  const Run exact = run(base, layer, flow, batch, false), fast = run(base, layer, flow, batch, true);
  CHECK(CpuBackend::precision() == Precision::exact);  // the scope ended with the frozen forward
  const double d_grad = max_grad_diff(exact, fast);
  const double d_loss = std::abs(fast.parts.loss - exact.parts.loss) / exact.parts.loss;
  MESSAGE("bf16 frozen forward vs exact: loss rel diff " << d_loss << ", max|dgrad|/max|grad| " << d_grad
                                                         << " (the reference fixtures' gate: 1e-4)");
  if (!CpuBackend::bf16_matmul_available()) {
    CHECK(d_grad == 0.0);  // no bf16 matmul on this CPU: the mode falls back to exact
    return;
  }
  CHECK(d_grad > 0.0);
  // Everything after the frozen forward stays exact: the whole step in bf16 lands elsewhere.
  CpuBackend::set_precision(Precision::bf16_activations);
  const Run all_bf16 = run(base, layer, flow, batch, false);
  CpuBackend::set_precision(Precision::exact);
  CHECK(max_grad_diff(fast, all_bf16) > 0.0);
}
