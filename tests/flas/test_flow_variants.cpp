// The ablation variants against second computations: pooled-additive conditioning (depends on the
// concept, blind to its padding, equals "none" with a zero gate), no conditioning (blind to the
// concept), switched-off parts, and the constant steering-vector field (h + T·d).
#include <doctest/doctest.h>

#include "flas/condition/concept_encoder.hpp"
#include "flas/field/flow_init.hpp"
#include "flas/field/steering_vector.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;
using flas::testing::pick_rows;

namespace {
template <class B>
struct VariantRig {
  flas::testing::FlasSet fs = flas::testing::FlasSet::all().at(0);
  io::SafeTensorsFile fx = io::SafeTensorsFile::open(fs.set.file);
  gemma2::Model<B> base = gemma2::Model<B>::load(fs.base_dir);
  Tensor h = convert(fx.get("velocity.h"), B::activation_dtype);
  Tensor pos, valid;

  VariantRig() {
    pos = Tensor::empty({h.dim(0), h.dim(1)}, DType::I64);
    valid = Tensor::empty({h.dim(0), h.dim(1)}, DType::U8);
    for (std::int64_t i = 0; i < pos.numel(); ++i) pos.data<std::int64_t>()[i] = i % h.dim(1), valid.data<std::uint8_t>()[i] = 1;
  }
  field::FlasFlow<B> flow(field::FlowSwitches sw, std::uint64_t seed = 3) {
    field::FlowWeights w = field::init_flow(base.config(), base.weights(), fs.layer, {1, sw, true, 0.1f, seed});
    if (sw.time) std::fill_n(w.time.w2.data<float>(), w.time.w2.numel(), 0.01f);  // make e(t) non-zero
    return field::FlasFlow<B>(base.config(), base.inv_freq(), std::move(w));
  }
  condition::EncodedConcepts<B> concepts(std::vector<std::int64_t> rows) {
    return condition::encode_concepts(base, pick_rows(fx.get("concept.input_ids"), rows),
                                      pick_rows(fx.get("concept.attention_mask"), rows));
  }
  template <class F>
  Tensor v(const F& f, const typename F::Conditioning& c) {
    gemma2::TokenLayout at{pos, 0, h.dim(1), valid.template data<std::uint8_t>()};
    auto cache = f.new_slot_cache(h.dim(0), h.dim(1));
    const std::vector<float> t{0.3f, 1.1f};
    return f.velocity(h, t, c, at, cache);
  }
};
}  // namespace

TEST_CASE_TEMPLATE("pooled-additive and unconditioned flows behave as their definitions say", B, FLAS_HOST_BACKENDS) {
  VariantRig<B> rig;
  field::FlowSwitches pooled_sw;
  pooled_sw.cross_attn = false;
  pooled_sw.pooled = true;
  auto pooled = rig.flow(pooled_sw);
  const auto c01 = rig.concepts({0, 1}), c10 = rig.concepts({1, 0});
  const Tensor v01 = rig.v(pooled, pooled.condition(c01));
  CHECK(max_rel_diff(rig.v(pooled, pooled.condition(c10)), v01) > 1e-4);  // the concept matters

  // Row 1's concept has 2 pad tokens: cutting them off changes nothing.
  auto trimmed = rig.concepts({1});
  const Tensor ids = pick_rows(rig.fx.get("concept.input_ids"), {1});
  const std::int64_t real = std::int64_t(std::count_if(trimmed.mask.template data<std::uint8_t>(),
                                                       trimmed.mask.template data<std::uint8_t>() + trimmed.mask.numel(),
                                                       [](auto m) { return m != 0; }));
  REQUIRE(real < ids.dim(1));
  Tensor short_ids = Tensor::empty({1, real}, DType::I64);
  std::copy_n(ids.data<std::int64_t>(), real, short_ids.data<std::int64_t>());
  Tensor short_mask = zeros({1, real}, DType::U8);
  std::fill_n(short_mask.data<std::uint8_t>(), real, std::uint8_t(1));
  const auto c_short = condition::encode_concepts(rig.base, short_ids, short_mask);
  const auto c_pad = rig.concepts({1});
  CHECK(max_rel_diff(pooled.condition(c_short).pooled[0], pooled.condition(c_pad).pooled[0]) <= 1e-6);

  field::FlowSwitches none_sw;
  none_sw.cross_attn = false;
  auto none = rig.flow(none_sw);
  const Tensor vn = rig.v(none, none.condition(c01));
  CHECK(max_rel_diff(rig.v(none, none.condition(c10)), vn) == 0);  // blind to the concept

  // With its gate at zero, the pooled flow is the unconditioned flow with the same other weights.
  auto w = field::clone_flow_weights(pooled.weights());
  for (auto& blk : w.blocks) std::fill_n(blk.cross_gate.template data<float>(), blk.cross_gate.numel(), 0.0f);
  field::FlasFlow<B> gated_off(rig.base.config(), rig.base.inv_freq(), w);
  CHECK(max_rel_diff(rig.v(gated_off, gated_off.condition(c01)), vn) <= 1e-6);
}

TEST_CASE_TEMPLATE("switched-off parts contribute nothing", B, FLAS_HOST_BACKENDS) {
  VariantRig<B> rig;
  const auto c = rig.concepts({0, 1});
  field::FlowSwitches all;
  auto full = rig.flow(all);
  for (int part = 0; part < 4; ++part) {
    auto w = field::clone_flow_weights(full.weights());
    for (auto& blk : w.blocks) {
      Tensor& gate = part == 0 ? blk.cross_gate : part == 1 ? blk.self_attn_gate : blk.mlp_gate;
      if (part < 3) std::fill_n(gate.template data<float>(), gate.numel(), 0.0f);
    }
    if (part == 3) std::fill_n(w.time.w2.template data<float>(), w.time.w2.numel(), 0.0f), std::fill_n(w.time.b2.template data<float>(), w.time.b2.numel(), 0.0f);
    field::FlasFlow<B> zeroed(rig.base.config(), rig.base.inv_freq(), w);
    auto off = field::clone_flow_weights(full.weights());
    (part == 0 ? off.switches.cross_attn : part == 1 ? off.switches.self_attn : part == 2 ? off.switches.mlp : off.switches.time) = false;
    field::FlasFlow<B> switched(rig.base.config(), rig.base.inv_freq(), off);
    INFO("part " << part);
    CHECK(max_rel_diff(rig.v(switched, switched.condition(c)), rig.v(zeroed, zeroed.condition(c))) <= 1e-6);
    CHECK(max_rel_diff(rig.v(switched, switched.condition(c)), rig.v(full, full.condition(c))) > 1e-5);
  }
}

TEST_CASE_TEMPLATE("a steering vector moves each row by T·d", B, FLAS_HOST_BACKENDS) {
  VariantRig<B> rig;
  const std::int64_t H = rig.h.dim(2);
  Tensor d = Tensor::empty({2, H}, DType::F32);
  for (std::int64_t i = 0; i < d.numel(); ++i) d.data<float>()[i] = float(std::sin(0.37 * double(i)));
  field::SteeringVectorField<B> f(d);
  const std::vector<float> T{1.5f, 0.0f};
  gemma2::FlowSteering<B, field::SteeringVectorField<B>> tap(f, f.condition({1, 0}), {rig.fs.layer, 3, T, {}, 1.0f});
  Tensor h = clone(rig.h);
  gemma2::TapSite<B> site{rig.fs.layer, h, rig.pos, rig.valid.template data<std::uint8_t>(), rig.h.dim(1), 0};
  tap(site);
  Tensor want = clone(rig.h);
  for (std::int64_t s = 0; s < rig.h.dim(1); ++s) {
    auto row = want[0][s];
    Tensor step = clone(d[1]);
    B::scale(step, T[0]);
    B::add(row, convert(step, B::activation_dtype));
  }
  CHECK(max_rel_diff(h, want) <= 1e-6);
  CHECK(max_rel_diff(h[1], rig.h[1]) == 0);  // T = 0: untouched
  CHECK_THROWS_AS(f.condition({2}), flas::Error);
}

// A slot cache keeps e(t) across decode tokens; a call at other times must not reuse it. Without
// self-attention the velocity depends on the cache through e(t) alone, so a cache that has seen other
// times must give exactly what a fresh one gives.
TEST_CASE_TEMPLATE("a slot's cached time embedding follows the times it is called with", B, FLAS_HOST_BACKENDS) {
  VariantRig<B> rig;
  field::FlowSwitches sw;
  sw.self_attn = false;
  auto flow = rig.flow(sw);
  const auto cond = flow.condition(rig.concepts({0, 1}));
  gemma2::TokenLayout at{rig.pos, 0, rig.h.dim(1), rig.valid.template data<std::uint8_t>()};
  const std::vector<float> t1{0.3f, 1.1f}, t2{0.3f, 1.7f};
  auto used = flow.new_slot_cache(rig.h.dim(0), rig.h.dim(1));
  const Tensor v1 = flow.velocity(rig.h, t1, cond, at, used);
  const Tensor v2 = flow.velocity(rig.h, t2, cond, at, used);
  auto fresh = flow.new_slot_cache(rig.h.dim(0), rig.h.dim(1));
  CHECK(max_rel_diff(v2, flow.velocity(rig.h, t2, cond, at, fresh)) == 0);
  CHECK(max_rel_diff(v1, flow.velocity(rig.h, t1, cond, at, used)) == 0);  // and back
  CHECK(max_rel_diff(v1, v2) > 1e-6);                                        // the times matter
}
