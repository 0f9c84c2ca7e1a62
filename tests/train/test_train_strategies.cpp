// How the training maths is computed, on the f32 fixture flow: the recorded forward is FlasFlow's own
// velocity bit for bit; the training forward is the inference forward (a steering tap on Gemma-2);
// Direct and Checkpointed give identical gradients and Checkpointed keeps fewer bytes; gradients
// accumulate across calls; a gradient target of another dtype gets the same numbers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "flas/backends/scalar_backward.hpp"
#include "flas/io/safetensors.hpp"
#include "flas/models/gemma2/attention.hpp"  // flow_steering.hpp uses TokenLayout without including it
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas/train/flas_loss.hpp"
#include "support/compare.hpp"
#include "flas/flas_sets.hpp"

using namespace flas;
using F32 = ScalarBackend<float>;

// The ODE core's Direct and Checkpointed strategies accept the flow as a differentiable field.
static_assert(ode::DifferentiableField<train::FlowOdeField<F32>, Tensor>);
static_assert(ode::DifferentiableField<train::FlowOdeField<ScalarBackend<double>>, Tensor>);

namespace {

struct FixtureRig {
  flas::testing::FlasSet fs = flas::testing::FlasSet::all().at(0);
  io::SafeTensorsFile fx = io::SafeTensorsFile::open(fs.set.file);
  gemma2::Model<F32> base = gemma2::Model<F32>::load(fs.base_dir);
  field::FlasFlow<F32> flow = flas::testing::load_flow(base, fs.flow);

  train::TrainBatch batch(int steps) {
    train::TrainBatch b;
    b.input_ids = fx.get("train.input_ids");
    b.attention_mask = fx.get("train.attention_mask");
    b.labels = fx.get("train.labels");
    b.concept_ids = fx.get("concept.input_ids");
    b.concept_mask = fx.get("concept.attention_mask");
    b.concept_of_row = {0, 1};
    b.flowtime = 1.7f;  // 1.7/N is not exact in f32
    b.steps = steps;
    return b;
  }
};

std::vector<Tensor*> tensors(field::FlowWeights& w) {
  std::vector<Tensor*> out;
  field::for_each_flow_parameter(w, [&](const std::string&, Tensor& t) { out.push_back(&t); });
  return out;
}

bool identical(field::FlowWeights& a, field::FlowWeights& b) {
  const auto ta = tensors(a), tb = tensors(b);
  bool same = ta.size() == tb.size();
  for (std::size_t i = 0; same && i < ta.size(); ++i)
    same = ta[i]->bytes() == tb[i]->bytes() && std::memcmp(ta[i]->raw(), tb[i]->raw(), ta[i]->bytes()) == 0;
  return same;
}

}  // namespace

TEST_CASE("the recorded flow forward is FlasFlow::velocity bit for bit (padded batch, per-row t)") {
  FixtureRig rig;
  const auto batch = rig.batch(3);
  const train::BatchLayout at = train::BatchLayout::of(2, batch.input_ids.dim(1), batch.attention_mask);
  const auto concepts = condition::encode_concepts(rig.base, batch.concept_ids, batch.concept_mask);
  const auto cond = train::record_conditioning(rig.flow, concepts, rig.base.inv_freq());
  const auto ref_cond = rig.flow.condition(concepts);
  for (std::size_t b = 0; b < ref_cond.per_block.size(); ++b) {
    CHECK(std::memcmp(cond.cond.per_block[b].k.raw(), ref_cond.per_block[b].k.raw(), ref_cond.per_block[b].k.bytes()) == 0);
    CHECK(std::memcmp(cond.cond.per_block[b].v.raw(), ref_cond.per_block[b].v.raw(), ref_cond.per_block[b].v.bytes()) == 0);
  }
  const Tensor h = train::base_prefix_forward(rig.base, rig.fs.layer, batch.input_ids, at);
  const std::vector<float> t{0.35f, 1.2f};
  auto cache = rig.flow.new_slot_cache(2, at.seq);
  const Tensor want = rig.flow.velocity(h, t, ref_cond, at.tokens(), cache);
  train::FlowTape<F32> tape;
  const Tensor got = train::flow_velocity<F32>(rig.flow, cond, h, t, at, rig.base.inv_freq(), &tape);
  CHECK(std::memcmp(got.raw(), want.raw(), want.bytes()) == 0);
  CHECK(tape.bytes() > 0);
  const Tensor plain = train::flow_velocity<F32>(rig.flow, cond, h, t, at, rig.base.inv_freq());
  CHECK(std::memcmp(plain.raw(), want.raw(), want.bytes()) == 0);
}

TEST_CASE("the training forward is the steered inference forward (FlowSteering tap)") {
  FixtureRig rig;
  const auto batch = rig.batch(3);
  const train::FlasLoss<F32> loss(rig.base, rig.fs.layer);
  const auto parts = loss(rig.flow, batch, nullptr);
  // Inference: prefill through the steering tap, then HF's shifted CE on the logits.
  const auto concepts = condition::encode_concepts(rig.base, batch.concept_ids, batch.concept_mask);
  gemma2::FlowSteering<F32, field::FlasFlow<F32>> tap(rig.flow, rig.flow.condition(concepts),
                                                      {rig.fs.layer, batch.steps, {batch.flowtime, batch.flowtime}, {}, 1.0f});
  auto cache = rig.base.new_cache(2, batch.input_ids.dim(1));
  const Tensor h = rig.base.forward(batch.input_ids, convert(batch.attention_mask, DType::U8), cache, tap);
  const Tensor logits = rig.base.logits(h);
  const double ce = BackwardOps<F32>::cross_entropy(logits.view({logits.numel() / logits.dim(-1), logits.dim(-1)}),
                                                    shift_labels(batch.labels), nullptr);
  // Not bit for bit: the tap's Euler update is the backend's axpy, which the compiler may fuse into an
  // FMA, while the ODE core rounds dt·v and the sum separately, as PyTorch does.
  INFO("training " << parts.lm_loss << ", inference " << ce);
  CHECK(std::abs(parts.lm_loss - ce) <= 1e-6 * ce);
}

TEST_CASE("Direct and Checkpointed: identical gradients, fewer bytes kept by Checkpointed") {
  FixtureRig rig;
  for (int steps : {3, 5}) {
    const auto batch = rig.batch(steps);
    auto g_direct = train::zero_flow_gradients(rig.flow.weights());
    auto g_ckpt = train::zero_flow_gradients(rig.flow.weights());
    const auto direct = train::FlasLoss<F32>(rig.base, rig.fs.layer, 0.1f, train::GradientStrategy::direct)(
        rig.flow, batch, &g_direct);
    const auto ckpt = train::FlasLoss<F32>(rig.base, rig.fs.layer, 0.1f, train::GradientStrategy::checkpointed)(
        rig.flow, batch, &g_ckpt);
    INFO("N = " << steps << ": direct keeps " << direct.flow_gradient_bytes << " bytes, checkpointed "
                << ckpt.flow_gradient_bytes);
    CHECK(direct.loss == ckpt.loss);
    CHECK(identical(g_direct, g_ckpt));
    CHECK(ckpt.flow_gradient_bytes < direct.flow_gradient_bytes);
    std::printf("[train strategies] N=%d: direct keeps %zu bytes, checkpointed %zu\n", steps, direct.flow_gradient_bytes,
                ckpt.flow_gradient_bytes);
  }
}

TEST_CASE("gradients accumulate across calls; an F64 target gets the F32 numbers") {
  FixtureRig rig;
  const auto batch = rig.batch(3);
  const train::FlasLoss<F32> loss(rig.base, rig.fs.layer);
  auto once = train::zero_flow_gradients(rig.flow.weights());
  loss(rig.flow, batch, &once);
  auto twice = train::zero_flow_gradients(rig.flow.weights());
  loss(rig.flow, batch, &twice);
  loss(rig.flow, batch, &twice);
  auto wide = train::zero_flow_gradients(rig.flow.weights(), DType::F64);
  loss(rig.flow, batch, &wide);
  const auto a = tensors(once), b = tensors(twice), c = tensors(wide);
  for (std::size_t i = 0; i < a.size(); ++i) {
    Tensor doubled = clone(*a[i]);
    for (std::int64_t e = 0; e < doubled.numel(); ++e) doubled.data<float>()[e] *= 2;
    CHECK(testing::max_rel_diff(*b[i], doubled) <= 1e-6);
    CHECK(testing::max_rel_diff(*c[i], *a[i]) == 0.0);
  }
  // A target that does not match the flow is refused.
  field::FlowWeights wrong = train::zero_flow_gradients(rig.flow.weights());
  wrong.blocks.pop_back();
  CHECK_THROWS_AS(loss(rig.flow, batch, &wrong), flas::Error);
}
