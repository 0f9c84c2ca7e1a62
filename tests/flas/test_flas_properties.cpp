// Steering checked against second computations: each row of a mixed batch (own concept, own T) equals
// the row alone; cached prefill + decode equals recomputing the whole sequence; T = 0 is exactly the
// base model; steered logits differ from unsteered ones.
#include <doctest/doctest.h>

#include "flas/condition/concept_encoder.hpp"
#include "flas/generate/generate.hpp"
#include "flas/models/gemma2/flow_steering.hpp"
#include "flas_sets.hpp"
#include "support/backends.hpp"
#include "support/compare.hpp"

using namespace flas;
using flas::testing::max_rel_diff;
using flas::testing::pick_rows;

namespace {
template <class B>
struct Rig {
  flas::testing::FlasSet fs = flas::testing::FlasSet::all().at(0);
  io::SafeTensorsFile fx = io::SafeTensorsFile::open(fs.set.file);
  gemma2::Model<B> base = gemma2::Model<B>::load(fs.base_dir);
  field::FlasFlow<B> flow = flas::testing::load_flow(base, fs.flow);

  // Steps of greedy steering for prompts with per-row concept rows (of concept.*) and T.
  GenerateResult run(const std::vector<std::vector<std::int64_t>>& prompts, const std::vector<std::int64_t>& concept_rows,
                     std::vector<float> T, std::int64_t new_tokens, int N = 2) {
    const auto concepts = condition::encode_concepts(base, pick_rows(fx.get("concept.input_ids"), concept_rows),
                                                     pick_rows(fx.get("concept.attention_mask"), concept_rows));
    gemma2::FlowSteering<B, field::FlasFlow<B>> tap(flow, flow.condition(concepts), {fs.layer, N, std::move(T), {}, 1.0f});
    GenerateOptions opt;
    opt.max_new_tokens = new_tokens;
    opt.stop_ids = {-1};
    opt.keep_step_logits = true;
    return generate(base, prompts, opt, tap);
  }
};

std::vector<std::int64_t> prompt(std::size_t n, std::int64_t salt) {
  std::vector<std::int64_t> v{2};
  for (std::size_t i = 1; i < n; ++i) v.push_back(3 + (std::int64_t(i) * 29 + salt * 13) % 500);
  return v;
}
}  // namespace

TEST_CASE_TEMPLATE("each row of a mixed batch gets exactly what it gets alone", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  const std::vector<std::vector<std::int64_t>> prompts{prompt(7, 1), prompt(3, 2), prompt(5, 3)};
  const std::vector<std::int64_t> rows{1, 0, 1};
  const std::vector<float> T{2.0f, 0.7f, 0.0f};
  auto batch = rig.run(prompts, rows, T, 6);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    auto alone = rig.run({prompts[b]}, {rows[b]}, {T[b]}, 6);
    CHECK(alone.tokens[0] == batch.tokens[b]);
    CHECK(max_rel_diff(batch.step_logits[std::int64_t(b)], alone.step_logits[0]) <= 1e-5);
  }
}

TEST_CASE_TEMPLATE("steered cached decode equals recomputing the whole sequence", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  auto ctx = prompt(6, 4);
  auto r = rig.run({ctx}, {0}, {1.5f}, 10);  // runs past the sliding window (8)
  const std::int64_t V = rig.base.config().vocab_size;
  for (std::int64_t k = 0; k < 10; ++k) {
    auto full = rig.run({ctx}, {0}, {1.5f}, 1);  // a fresh prefill of the whole context
    CHECK(max_rel_diff(r.step_logits[0][k].view({1, V}), full.step_logits[0][0].view({1, V})) <= 1e-5);
    ctx.push_back(r.tokens[0][std::size_t(k)]);
  }
}

TEST_CASE_TEMPLATE("T = 0 is exactly the base model; T > 0 is not", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  const std::vector<std::vector<std::int64_t>> prompts{prompt(5, 5), prompt(8, 6)};
  auto zero = rig.run(prompts, {0, 1}, {0.0f, 0.0f}, 5);
  GenerateOptions opt;
  opt.max_new_tokens = 5;
  opt.stop_ids = {-1};
  opt.keep_step_logits = true;
  auto plain = generate(rig.base, prompts, opt, gemma2::NoTap{});
  CHECK(max_rel_diff(zero.step_logits, plain.step_logits) == 0);
  auto moved = rig.run(prompts, {0, 1}, {2.0f, 2.0f}, 1);
  CHECK(max_rel_diff(moved.step_logits[0][0], plain.step_logits[0][0]) > 1e-2);
}

namespace {
// The tap applied once to velocity.h (no padding, positions 0..S−1) of the fixture set.
template <class B>
Tensor tap_once(Rig<B>& rig, gemma2::SteeringOptions o) {
  const Tensor h0 = rig.fx.get("velocity.h");
  const std::int64_t Bn = h0.dim(0), S = h0.dim(1);
  Tensor pos = Tensor::empty({Bn, S}, DType::I64);
  for (std::int64_t i = 0; i < Bn * S; ++i) pos.data<std::int64_t>()[i] = i % S;
  std::vector<std::uint8_t> valid(std::size_t(Bn * S), 1);
  const auto concepts = condition::encode_concepts(rig.base, rig.fx.get("concept.input_ids"), rig.fx.get("concept.attention_mask"));
  gemma2::FlowSteering<B, field::FlasFlow<B>> tap(rig.flow, rig.flow.condition(concepts), o);
  Tensor h = convert(h0, B::activation_dtype);
  gemma2::TapSite<B> site{o.layer, h, pos, valid.data(), S, 0};
  tap(site);
  return h;
}

// v(h, t) for the same rows, each evaluation with a fresh cache (a full-sequence pass).
template <class B>
Tensor velocity_at(Rig<B>& rig, const Tensor& h, const std::vector<float>& t) {
  const std::int64_t Bn = h.dim(0), S = h.dim(1);
  Tensor pos = Tensor::empty({Bn, S}, DType::I64);
  for (std::int64_t i = 0; i < Bn * S; ++i) pos.data<std::int64_t>()[i] = i % S;
  std::vector<std::uint8_t> valid(std::size_t(Bn * S), 1);
  const auto concepts = condition::encode_concepts(rig.base, rig.fx.get("concept.input_ids"), rig.fx.get("concept.attention_mask"));
  gemma2::TokenLayout at{pos, 0, S, valid.data()};
  auto cache = rig.flow.new_slot_cache(Bn, S);
  return rig.flow.velocity(h, t, rig.flow.condition(concepts), at, cache);
}
}  // namespace

TEST_CASE_TEMPLATE("midpoint steering equals a hand-written midpoint; step subsets and displacement scaling", B,
                   FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  const std::vector<float> T{1.2f, 0.6f};
  const int N = 2;
  gemma2::SteeringOptions o{rig.fs.layer, N, T, {}, 1.0f, gemma2::FlowSolver::midpoint};
  const Tensor got = tap_once(rig, o);
  Tensor h = convert(rig.fx.get("velocity.h"), B::activation_dtype);
  const Tensor h0 = clone(h);
  for (int k = 0; k < N; ++k) {  // h ← h + dt·v(h + dt/2·v(h, t), t + dt/2), per row
    std::vector<float> t(2), tm(2), dt(2);
    for (std::size_t b = 0; b < 2; ++b) dt[b] = T[b] / N, t[b] = float(k) * dt[b], tm[b] = float(double(t[b]) + 0.5 * double(dt[b]));
    const Tensor v1 = velocity_at(rig, h, t);
    Tensor mid = clone(h);
    for (std::int64_t b = 0; b < 2; ++b) {
      auto r = mid[b];
      B::axpy(r, float(0.5 * double(dt[std::size_t(b)])), v1[b]);
    }
    const Tensor v2 = velocity_at(rig, mid, tm);
    for (std::int64_t b = 0; b < 2; ++b) {
      auto r = h[b];
      B::axpy(r, dt[std::size_t(b)], v2[b]);
    }
  }
  CHECK(max_rel_diff(got, h) <= 1e-5);

  // Only step 1 of two Euler steps: h0 + dt·v(h0, t_1).
  const Tensor only1 = tap_once(rig, {rig.fs.layer, 2, T, {1}, 1.0f, gemma2::FlowSolver::euler});
  Tensor want = clone(h0);
  const Tensor v = velocity_at(rig, h0, {T[0] / 2, T[1] / 2});
  for (std::int64_t b = 0; b < 2; ++b) {
    auto r = want[b];
    B::axpy(r, T[std::size_t(b)] / 2, v[b]);
  }
  CHECK(max_rel_diff(only1, want) <= 1e-6);

  // Displacement scaled by s: h0 + s·(h_N − h0).
  const Tensor full = tap_once(rig, {rig.fs.layer, 2, T, {}, 1.0f, gemma2::FlowSolver::euler});
  const Tensor half = tap_once(rig, {rig.fs.layer, 2, T, {}, 0.5f, gemma2::FlowSolver::euler});
  Tensor expect = clone(full);
  B::axpy(expect, -1.0f, h0);
  B::scale(expect, 0.5f);
  B::add(expect, h0);
  CHECK(max_rel_diff(half, expect) <= 1e-6);
}

TEST_CASE_TEMPLATE("RK4 steering: cached decode equals recomputation with one cache per stage", B, FLAS_HOST_BACKENDS) {
  Rig<B> rig;
  auto run = [&](const std::vector<std::int64_t>& p, std::int64_t n) {
    const auto concepts = condition::encode_concepts(rig.base, pick_rows(rig.fx.get("concept.input_ids"), {1}),
                                                     pick_rows(rig.fx.get("concept.attention_mask"), {1}));
    gemma2::FlowSteering<B, field::FlasFlow<B>> tap(rig.flow, rig.flow.condition(concepts),
                                                    {rig.fs.layer, 2, {1.5f}, {}, 1.0f, gemma2::FlowSolver::rk4});
    GenerateOptions opt;
    opt.max_new_tokens = n;
    opt.stop_ids = {-1};
    opt.keep_step_logits = true;
    return generate(rig.base, {p}, opt, tap);
  };
  auto ctx = prompt(5, 9);
  auto r = run(ctx, 6);
  const std::int64_t V = rig.base.config().vocab_size;
  for (std::int64_t k = 0; k < 6; ++k) {
    auto full = run(ctx, 1);
    CHECK(max_rel_diff(r.step_logits[0][k].view({1, V}), full.step_logits[0][0].view({1, V})) <= 1e-5);
    ctx.push_back(r.tokens[0][std::size_t(k)]);
  }
}
